"""Masked-token pretraining of the foundation model (LaBraM / NeuroRVQ recipe).

The frozen tokenizer turns every patch into 4 branches x 8 levels of codes; the FM sees
the window with some patches replaced by ``mask_token`` and predicts, for each masked
patch, all 32 codes with its 32 heads (head ``8*(branch-1) + level``). Masking is
symmetric: each window is used twice per step, with a random mask and with its
complement, so every patch is a target once.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np
import torch
import torch.nn.functional as F

from neurorvq_stream.engines import NeuroRVQConfig
from neurorvq_stream.engines._api import prepare_window
from neurorvq_stream.engines._foundation import NeuroRVQFoundationModel
from neurorvq_stream.engines._tokenizer import NeuroRVQTokenizer

from ._batches import random_batch
from ._checkpointing import seed_everything
from ._electrode_geometry import electrode_directions
from ._loop import Evaluation, Session, run_settings, run_steps
from ._losses import symmetric_mask
from ._schedule import param_groups, warmup_linear

COORDINATE_SCALE = 0.5


@dataclass
class PretrainConfig:
    """Settings of a masked-token pretraining run."""

    steps: int = 500
    batch_size: int = 8
    max_channels: int = 32
    lr: float = 5e-4
    weight_decay: float = 0.05
    warmup_steps: int = 50
    mask_ratio: float = 0.5
    seed: int = 0

    def as_dict(self) -> dict:
        return asdict(self)


def new_foundation_model(
    tokenizer: NeuroRVQTokenizer, depth: int = 4, seed: int = 0,
    coordinate_scale: float = COORDINATE_SCALE,
) -> NeuroRVQFoundationModel:
    """A fresh FM in pretraining form whose heads predict ``tokenizer``'s codes.

    The engines create the embeddings as zeros (they are always loaded); a model trained
    from scratch starts them as BEiT / LaBraM do (truncated normal, std 0.02), and its
    electrode embeddings also get a fixed random projection of each electrode's scalp
    direction (``coordinate_scale`` per dimension): with all-equal rows the network cannot
    tell electrodes apart, and with the geometry in them it can weigh the two hemispheres
    differently from the first step (what a lateralized response needs).
    """
    generator = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    tc = tokenizer.config
    cfg = NeuroRVQConfig(
        **{**tc.to_dict(), "depth": depth, "layer_scale": True, "n_out": 0,
           "pretraining_heads": True}
    )
    fm = NeuroRVQFoundationModel(cfg)
    with torch.no_grad():
        for name in ("pos_embed", "time_embed", "cls_token", "mask_token"):
            torch.nn.init.trunc_normal_(getattr(fm, name), std=0.02, generator=generator)
        directions = torch.as_tensor(electrode_directions(), dtype=torch.float32)
        projection = torch.randn(3, cfg.embed_dim, generator=generator) * coordinate_scale
        fm.pos_embed[: len(directions)] += directions @ projection
    return fm


def _masked_logits(
    fm: NeuroRVQFoundationModel, tokenizer: NeuroRVQTokenizer, x: torch.Tensor,
    channels: Sequence[str], mask_ratio: float, generator: torch.Generator,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Code logits (branches, levels, M, n_code) of the M masked patches, and their codes."""
    w = prepare_window(x, channels, fm.config, x.device)
    with torch.no_grad():
        codes = tokenizer(w.patches, w.spatial_ix, w.time_ix)  # (branches, levels, B, N)
    b, n = w.spatial_ix.shape
    mask = symmetric_mask(b, n, mask_ratio, generator).to(x.device)
    features = fm.forward_features(
        torch.cat([w.patches, w.patches]), torch.cat([w.spatial_ix, w.spatial_ix]),
        torch.cat([w.time_ix, w.time_ix]), mask=mask,
    )
    return fm.pretraining_logits(features)[:, :, mask], torch.cat([codes, codes], dim=2)[:, :, mask]


def pretrain_step(
    fm: NeuroRVQFoundationModel, tokenizer: NeuroRVQTokenizer, x: torch.Tensor,
    channels: Sequence[str], mask_ratio: float, generator: torch.Generator,
) -> tuple[torch.Tensor, dict[str, float]]:
    """Masked-code cross-entropy (mean over the 32 heads) and code accuracy on one batch."""
    logits, targets = _masked_logits(fm, tokenizer, x, channels, mask_ratio, generator)
    loss = F.cross_entropy(logits.flatten(0, 2), targets.flatten())
    accuracy = (logits.argmax(-1) == targets).float().mean()
    return loss, {"loss": float(loss.detach()), "accuracy": float(accuracy)}


def pretrain_foundation_model(
    fm: NeuroRVQFoundationModel, tokenizer: NeuroRVQTokenizer, windows: np.ndarray,
    channels: Sequence[str], config: PretrainConfig | None = None, device: str = "cpu",
    progress: bool = True, session: Session | None = None,
    evaluation: Evaluation | None = None,
) -> list[dict[str, float]]:
    """Pretrain ``fm`` in place on (n, C, A*200) windows; resumable through ``session``."""
    config = config or PretrainConfig()
    if not fm.config.pretraining_heads:
        raise ValueError("The foundation model has no pretraining heads; build it with "
                         "new_foundation_model() or pretraining_heads=True.")
    if fm.config.n_code != tokenizer.config.n_code:
        raise ValueError(f"The FM heads predict {fm.config.n_code} codes but the tokenizer "
                         f"has {tokenizer.config.n_code}; build the FM from this tokenizer.")
    seed_everything(config.seed)
    fm.to(device)
    tokenizer.to(device).eval()
    optimizer = torch.optim.AdamW(
        param_groups(fm, config.lr, config.weight_decay, 1.0, fm.config.depth), lr=config.lr
    )
    generator = torch.Generator().manual_seed(config.seed)
    data = torch.as_tensor(windows, dtype=torch.float32)

    def step(i: int) -> dict[str, float]:
        x, names = random_batch(data, channels, config.batch_size, config.max_channels, generator)
        warmup_linear(optimizer, i, config.warmup_steps, config.steps)
        loss, parts = pretrain_step(fm, tokenizer, x.to(device), names, config.mask_ratio,
                                    generator)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(fm.parameters(), 3.0)
        optimizer.step()
        return parts

    parts = {"model": fm, "optimizer": optimizer, "batches": generator}
    return run_steps("FM pretraining", config.steps, step, parts,
                     run_settings(config.as_dict(), data), session, evaluation, progress)


@torch.no_grad()
def evaluate_pretraining(
    fm: NeuroRVQFoundationModel, tokenizer: NeuroRVQTokenizer, windows: np.ndarray,
    channels: Sequence[str], mask_ratio: float = 0.5, batch_size: int = 8, seed: int = 0,
    device: str = "cpu",
) -> dict[str, float]:
    """Masked-code loss and accuracy on ``windows`` with fixed masks (comparable over time).

    Also the accuracy of the first RVQ level alone, the code most predictable from context
    (chance: 1 / n_code); deeper levels code finer residuals and stay near chance longer.
    """
    fm.to(device).eval()
    tokenizer.to(device).eval()
    generator = torch.Generator().manual_seed(seed)
    losses, accuracies, first_level, weights = [], [], [], []
    for start in range(0, len(windows), batch_size):
        x = torch.as_tensor(windows[start : start + batch_size], device=device)
        logits, targets = _masked_logits(fm, tokenizer, x, channels, mask_ratio, generator)
        hits = (logits.argmax(-1) == targets).float()
        losses.append(float(F.cross_entropy(logits.flatten(0, 2), targets.flatten())))
        accuracies.append(float(hits.mean()))
        first_level.append(float(hits[:, 0].mean()))
        weights.append(len(x))
    return {
        "masked_code_loss": float(np.average(losses, weights=weights)),
        "masked_code_accuracy": float(np.average(accuracies, weights=weights)),
        "level1_accuracy": float(np.average(first_level, weights=weights)),
    }
