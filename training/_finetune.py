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
from tqdm.auto import tqdm

from ._model_io import classifier_logits, fm_depth, head_parameter_names, pooled_features
from ._schedule import param_groups, warmup_linear


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
    seed: int = 0

    def as_dict(self) -> dict:
        return asdict(self)


# Head-only tuning on frozen features (calibration, cross-validation, the CPU-built default
# head): the published recipe with the backbone frozen; it trains in seconds.
HEAD_RECIPE = FinetuneConfig(head_only=True)


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
    model: torch.nn.Module, x: np.ndarray, y: np.ndarray, channels: list[str] | tuple[str, ...],
    n_classes: int, config: FinetuneConfig | None = None, device: str = "cpu",
    progress: bool = True,
) -> list[float]:
    """Fine-tune ``model`` (an engines FM with a head) in place; returns per-epoch mean loss."""
    config = config or FinetuneConfig()
    if len(x) != len(y):
        raise ValueError(f"{len(x)} epochs but {len(y)} labels.")
    model.to(device)
    if config.head_only:
        features = epoch_features(model, x, channels, device)
        return finetune_head(model, features, y, n_classes, config, device, progress)
    xt = torch.as_tensor(x, dtype=torch.float32)

    def forward(batch: torch.Tensor) -> torch.Tensor:
        return classifier_logits(model, batch, channels)

    return _train(model, forward, xt, y, n_classes, config, None, device, progress)


@torch.no_grad()
def epoch_features(
    model: torch.nn.Module, x: np.ndarray, channels: list[str] | tuple[str, ...],
    device: str = "cpu", batch_size: int = 64,
) -> torch.Tensor:
    """Pooled backbone features (n, branches*D) of epochs, what a head-only tuning reads."""
    model.to(device).eval()
    xt = torch.as_tensor(x, dtype=torch.float32)
    return torch.cat([pooled_features(model, xt[i : i + batch_size].to(device), channels).cpu()
                      for i in range(0, len(xt), batch_size)])


def finetune_head(
    model: torch.nn.Module, features: torch.Tensor, y: np.ndarray, n_classes: int,
    config: FinetuneConfig | None = None, device: str = "cpu", progress: bool = True,
) -> list[float]:
    """Train ``fc_norm`` + ``head`` on precomputed :func:`epoch_features` (backbone frozen).

    Computing features once lets cross-validation folds and calibration share them.
    """
    config = config or FinetuneConfig(head_only=True)
    if len(features) != len(y):
        raise ValueError(f"{len(features)} feature rows but {len(y)} labels.")

    def forward(batch: torch.Tensor) -> torch.Tensor:
        return model.head(model.fc_norm(batch))

    return _train(model, forward, features, y, n_classes, config,
                  head_parameter_names(model), device, progress)


def _train(
    model: torch.nn.Module, forward: Callable[[torch.Tensor], torch.Tensor],
    inputs: torch.Tensor, y: np.ndarray, n_classes: int, config: FinetuneConfig,
    trainable: set[str] | None, device: str, progress: bool,
) -> list[float]:
    torch.manual_seed(config.seed)
    generator = torch.Generator().manual_seed(config.seed)
    model.to(device).train()
    flags = {name: p.requires_grad for name, p in model.named_parameters()}
    groups = param_groups(
        model, config.lr, config.weight_decay, config.layer_decay, fm_depth(model), trainable
    )
    optimizer = torch.optim.AdamW(groups, lr=config.lr)
    weights = class_weights(y, n_classes).to(device)
    yt = torch.as_tensor(y)
    n = len(yt)
    per_epoch = max(1, -(-n // config.batch_size))
    total, warmup = config.epochs * per_epoch, config.warmup_epochs * per_epoch
    history, step = [], 0
    bar = tqdm(range(config.epochs), desc="fine-tune", disable=not progress, leave=False)
    for _ in bar:
        order = torch.randperm(n, generator=generator)
        losses = []
        for start in range(0, n, config.batch_size):
            idx = order[start : start + config.batch_size]
            warmup_linear(optimizer, step, warmup, total)
            loss = classification_loss(forward(inputs[idx].to(device)), yt[idx].to(device),
                                       weights)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 3.0)
            optimizer.step()
            losses.append(float(loss.detach()))
            step += 1
        history.append(float(np.mean(losses)))
        bar.set_postfix(loss=f"{history[-1]:.3f}")
    model.eval()
    for name, param in model.named_parameters():
        param.requires_grad_(flags[name])
    return history


@torch.no_grad()
def predict_proba(
    model: torch.nn.Module, x: np.ndarray, channels: list[str] | tuple[str, ...],
    device: str = "cpu", batch_size: int = 64,
) -> np.ndarray:
    """Class probabilities (n, n_classes); a one-logit head gives [1 - p, p]."""
    model.to(device).eval()
    out = []
    for start in range(0, len(x), batch_size):
        xb = torch.as_tensor(x[start : start + batch_size], dtype=torch.float32, device=device)
        logits = classifier_logits(model, xb, channels)
        if logits.shape[1] == 1:
            p = torch.sigmoid(logits[:, 0])
            out.append(torch.stack([1 - p, p], dim=1).cpu())
        else:
            out.append(torch.softmax(logits, dim=1).cpu())
    return torch.cat(out).numpy()
