"""Optimizer set-up shared by all trainers: AdamW, layer-wise lr decay, warm-up + linear decay."""

from __future__ import annotations

import re

import torch

_BLOCK = re.compile(r"(?:^|\.)blocks\.(\d+)\.")


def layer_id(name: str, depth: int) -> int:
    """Depth rank of a parameter: 0 for embeddings, 1 + N for block N, depth + 1 for heads."""
    match = _BLOCK.search(name)
    if match:
        return int(match.group(1)) + 1
    if any(part in name for part in ("patch_embed", "pos_embed", "time_embed", "cls_token",
                                     "mask_token")):
        return 0
    return depth + 1


def param_groups(
    model: torch.nn.Module, lr: float, weight_decay: float, layer_decay: float, depth: int,
    trainable: set[str] | None = None,
) -> list[dict]:
    """AdamW groups with lr ``lr * layer_decay ** (depth + 1 - layer)``.

    Biases, norms, layer scales and embeddings get no weight decay (as in BEiT / LaBraM).
    Parameters that are not trainable by design (EMA codebooks) are left out; ``trainable``
    (parameter names) also freezes everything else, e.g. for head-only tuning (the caller
    restores ``requires_grad`` afterwards).
    """
    groups: dict[tuple[int, bool], dict] = {}
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        if trainable is not None and name not in trainable:
            param.requires_grad_(False)
            continue
        layer = layer_id(name, depth)
        no_decay = param.ndim <= 1 or name.endswith(("_embed", "cls_token", "mask_token"))
        key = (layer, no_decay)
        if key not in groups:
            groups[key] = {
                "params": [],
                "lr": lr * layer_decay ** (depth + 1 - layer),
                "weight_decay": 0.0 if no_decay else weight_decay,
            }
        groups[key]["params"].append(param)
    if not groups:
        raise ValueError("No trainable parameters: check the names given in `trainable`.")
    for group in groups.values():
        group["base_lr"] = group["lr"]
    return list(groups.values())


def warmup_linear(optimizer: torch.optim.Optimizer, step: int, warmup: int, total: int) -> None:
    """Set each group's lr for ``step``: linear warm-up to its base lr, then linear decay."""
    if step < warmup:
        scale = (step + 1) / warmup
    else:
        scale = max(0.0, (total - step) / max(1, total - warmup))
    for group in optimizer.param_groups:
        group["lr"] = group["base_lr"] * scale
