"""Fine-tuning of the FM classification head on labelled epochs (published recipe by default).

Recipe (NeuroRVQ / LaBraM): AdamW lr 5e-4, weight decay 1e-2, layer-wise lr decay 0.975,
4 warm-up epochs then linear decay, batch 32, 20 epochs, class-weighted cross-entropy
(binary tasks: one logit, class-weighted BCE). ``head_only`` trains ``fc_norm`` and
``head`` and freezes the backbone; the frozen backbone's pooled features are then computed
once, so a head trains in seconds (what live calibration and cross-validation afford).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass

import numpy as np
import torch
import torch.nn.functional as F

from neurorvq_stream.engines._api import logits_to_probabilities, prepare_window
from neurorvq_stream.engines._foundation import NeuroRVQFoundationModel

from ._loop import Session, run_settings, run_steps
from ._mirror import add_mirrored
from ._schedule import param_groups, warmup_linear

HEAD_PREFIXES = ("fc_norm.", "head.")


@dataclass
class FinetuneConfig:
    """Settings of one fine-tuning run (defaults: the published recipe)."""

    lr: float = 5e-4
    weight_decay: float = 1e-2
    layer_decay: float = 0.975
    warmup_epochs: int = 4
    epochs: int = 20
    batch_size: int = 32
    head_only: bool = False
    mirror: bool = False  # also train on left-right mirrored epochs, classes swapped
    seed: int = 0

    def as_dict(self) -> dict:
        return asdict(self)


# Head-only tuning on frozen features (calibration, cross-validation, the CPU-built default
# head): the published recipe with the backbone frozen; it trains in seconds.
HEAD_RECIPE = FinetuneConfig(head_only=True)

# The shipped checkerboard left/right head: the whole FM fine-tuned on epochs and their
# mirror images, lr 1e-3; chosen by blocked cross-validation inside sub-s01 (the numbers
# are in docs/MODEL_CARDS.md).
CHECKER_RECIPE = FinetuneConfig(lr=1e-3, epochs=6, warmup_epochs=1, mirror=True)


def class_weights(y: np.ndarray, n_classes: int) -> torch.Tensor:
    """Inverse-frequency weights (mean 1) so that unbalanced sets score balanced accuracy."""
    counts = np.bincount(y, minlength=n_classes).astype(np.float64)
    if (counts == 0).any():
        missing = [i for i in range(n_classes) if counts[i] == 0]
        raise ValueError(f"Classes {missing} have no training epochs; every class needs some.")
    weights = counts.sum() / (n_classes * counts)
    return torch.as_tensor(weights, dtype=torch.float32)


def classification_loss(
    logits: torch.Tensor, y: torch.Tensor, weights: torch.Tensor
) -> torch.Tensor:
    """Class-weighted BCE for one-logit binary heads, class-weighted cross-entropy otherwise."""
    if logits.shape[1] == 1:
        per_epoch = F.binary_cross_entropy_with_logits(
            logits[:, 0], y.float(), reduction="none"
        )
        w = weights[y]
        return (per_epoch * w).sum() / w.sum()
    return F.cross_entropy(logits, y, weight=weights)


def finetune(
    model: NeuroRVQFoundationModel, x: np.ndarray, y: np.ndarray,
    channels: list[str] | tuple[str, ...], n_classes: int, config: FinetuneConfig | None = None,
    device: str = "cpu", progress: bool = True, session: Session | None = None,
) -> list[float]:
    """Fine-tune ``model`` (an engines FM with a head) in place; returns per-epoch mean loss."""
    config = config or FinetuneConfig()
    if len(x) != len(y):
        raise ValueError(f"{len(x)} epochs but {len(y)} labels.")
    if config.mirror:
        x, y = add_mirrored(x, y, channels)
    model.to(device)
    if config.head_only:
        features = epoch_features(model, x, channels, device)
        return finetune_head(model, features, y, n_classes, config, device, progress, session)
    xt = torch.as_tensor(x, dtype=torch.float32)

    def forward(batch: torch.Tensor) -> torch.Tensor:
        w = prepare_window(batch, channels, model.config, device)
        return model(w.patches, w.spatial_ix, w.time_ix)

    return _train(model, forward, xt, y, n_classes, config, None, device, progress, session)


@torch.no_grad()
def epoch_features(
    model: NeuroRVQFoundationModel, x: np.ndarray, channels: list[str] | tuple[str, ...],
    device: str = "cpu", batch_size: int = 64,
) -> torch.Tensor:
    """Pooled backbone features (n, branches*D) of epochs, what a head-only tuning reads."""
    model.to(device).eval()
    out = []
    for start in range(0, len(x), batch_size):
        w = prepare_window(x[start : start + batch_size], channels, model.config, device)
        out.append(model.pooled_features(w.patches, w.spatial_ix, w.time_ix).cpu())
    return torch.cat(out)


def finetune_head(
    model: NeuroRVQFoundationModel, features: torch.Tensor, y: np.ndarray, n_classes: int,
    config: FinetuneConfig | None = None, device: str = "cpu", progress: bool = True,
    session: Session | None = None,
) -> list[float]:
    """Train ``fc_norm`` + ``head`` on precomputed :func:`epoch_features` (backbone frozen).

    Computing features once lets cross-validation folds and calibration share them.
    """
    config = config or FinetuneConfig(head_only=True)
    if len(features) != len(y):
        raise ValueError(f"{len(features)} feature rows but {len(y)} labels.")

    def forward(batch: torch.Tensor) -> torch.Tensor:
        return model.head(model.fc_norm(batch))

    trainable = {name for name, _ in model.named_parameters() if name.startswith(HEAD_PREFIXES)}
    return _train(model, forward, features, y, n_classes, config, trainable, device, progress,
                  session)


def _train(
    model: NeuroRVQFoundationModel, forward: Callable[[torch.Tensor], torch.Tensor],
    inputs: torch.Tensor, y: np.ndarray, n_classes: int, config: FinetuneConfig,
    trainable: set[str] | None, device: str, progress: bool, session: Session | None,
) -> list[float]:
    """Epochs of shuffled mini-batches as steps of the shared loop; per-epoch mean losses.

    Each epoch's order comes from its own seeded generator, so a resumed run visits the
    batches an uninterrupted one would.
    """
    torch.manual_seed(config.seed)
    model.to(device)
    flags = {name: p.requires_grad for name, p in model.named_parameters()}
    groups = param_groups(
        model, config.lr, config.weight_decay, config.layer_decay, model.config.depth, trainable
    )
    optimizer = torch.optim.AdamW(groups, lr=config.lr)
    weights = class_weights(y, n_classes).to(device)
    yt = torch.as_tensor(y)
    n = len(yt)
    per_epoch = max(1, -(-n // config.batch_size))
    total, warmup = config.epochs * per_epoch, config.warmup_epochs * per_epoch

    def step(i: int) -> dict[str, float]:
        epoch, batch = divmod(i, per_epoch)
        order = torch.randperm(n, generator=torch.Generator().manual_seed(
            config.seed * 100_003 + epoch))
        idx = order[batch * config.batch_size : (batch + 1) * config.batch_size]
        warmup_linear(optimizer, i, warmup, total)
        loss = classification_loss(forward(inputs[idx].to(device)), yt[idx].to(device), weights)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 3.0)
        optimizer.step()
        return {"loss": float(loss.detach()), "epoch": epoch}

    try:
        history = run_steps("fine-tune", total, step, {"model": model, "optimizer": optimizer},
                            run_settings(config.as_dict(), inputs), session, None, progress)
    finally:
        for name, param in model.named_parameters():
            param.requires_grad_(flags[name])
    return [float(np.mean([h["loss"] for h in history if h["epoch"] == e]))
            for e in range(int(history[-1]["epoch"]) + 1)] if history else []


@torch.no_grad()
def predict_proba(
    model: NeuroRVQFoundationModel, x: np.ndarray, channels: list[str] | tuple[str, ...],
    device: str = "cpu", batch_size: int = 64,
) -> np.ndarray:
    """Class probabilities (n, n_classes); a one-logit head gives [1 - p, p]."""
    model.to(device).eval()
    out = []
    for start in range(0, len(x), batch_size):
        w = prepare_window(x[start : start + batch_size], channels, model.config, device)
        out.append(logits_to_probabilities(model(w.patches, w.spatial_ix, w.time_ix).cpu().numpy()))
    return np.concatenate(out)
