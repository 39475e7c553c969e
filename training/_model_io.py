"""The few glue functions between (B, C, A*200) microvolt windows and the engines modules."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from neurorvq_stream.engines import NeuroRVQFoundationModel, patch_indices

HEAD_PREFIXES = ("fc_norm.", "head.")


def model_inputs(
    x: torch.Tensor, channels: Sequence[str]
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Patches (B, C*A, 200) and spatial / temporal indices (B, C*A) of a batch of windows."""
    b, c, t = x.shape
    if c != len(channels):
        raise ValueError(f"The windows have {c} channels but {len(channels)} names were given.")
    if t % 200:
        raise ValueError(f"Windows must be whole 1 s patches (multiples of 200), got {t}.")
    spatial, temporal = patch_indices(channels, t // 200)
    sp = torch.as_tensor(spatial, device=x.device).expand(b, -1)
    tm = torch.as_tensor(temporal, device=x.device).expand(b, -1)
    return x.reshape(b, -1, 200), sp, tm


def classifier_logits(
    model: NeuroRVQFoundationModel, x: torch.Tensor, channels: Sequence[str]
) -> torch.Tensor:
    """Logits (B, n_out) of a fine-tuned FM for windows ``x`` (B, C, A*200) in uV."""
    return model.head(model.fc_norm(pooled_features(model, x, channels)))


def head_parameter_names(model: NeuroRVQFoundationModel) -> set[str]:
    """Names of the classification head's parameters (what head-only tuning trains)."""
    return {name for name, _ in model.named_parameters() if name.startswith(HEAD_PREFIXES)}


def fm_depth(model: NeuroRVQFoundationModel) -> int:
    """Number of transformer blocks (for the layer-wise lr decay)."""
    return model.config.depth


def pooled_features(
    model: NeuroRVQFoundationModel, x: torch.Tensor, channels: Sequence[str]
) -> torch.Tensor:
    """:meth:`NeuroRVQFoundationModel.pooled_features` of a (B, C, A*200) window batch."""
    return model.pooled_features(*model_inputs(x, channels))
