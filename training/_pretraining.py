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
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from neurorvq_stream.engines import NeuroRVQConfig, NeuroRVQFoundationModel, NeuroRVQTokenizer

from ._batches import random_batch
from ._checkpointing import load_state, save_state, seed_everything
from ._losses import symmetric_mask
from ._model_io import model_inputs
from ._schedule import param_groups, warmup_linear


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
    save_every: int = 100

    def as_dict(self) -> dict:
        return asdict(self)


def new_foundation_model(
    tokenizer: NeuroRVQTokenizer, depth: int = 4, seed: int = 0
) -> NeuroRVQFoundationModel:
    """A fresh FM in pretraining form whose heads predict ``tokenizer``'s codes."""
    torch.manual_seed(seed)
    tc = tokenizer.config
    cfg = NeuroRVQConfig(
        **{**tc.to_dict(), "depth": depth, "layer_scale": True, "n_out": 0,
           "pretraining_heads": True}
    )
    return NeuroRVQFoundationModel(cfg)


def pretrain_step(
    fm: NeuroRVQFoundationModel, tokenizer: NeuroRVQTokenizer, x: torch.Tensor,
    channels: Sequence[str], mask_ratio: float, generator: torch.Generator,
) -> tuple[torch.Tensor, dict[str, float]]:
    """Masked-code cross-entropy (mean over the 32 heads) and code accuracy on one batch."""
    patches, sp, tm = model_inputs(x, channels)
    with torch.no_grad():
        codes = tokenizer(patches, sp, tm)  # (branches, levels, B, N)
    b, n = sp.shape
    mask = symmetric_mask(b, n, mask_ratio, generator).to(x.device)
    features = fm.forward_features(
        torch.cat([patches, patches]), torch.cat([sp, sp]), torch.cat([tm, tm]), mask=mask
    )
    logits = fm.pretraining_logits(features)[:, :, mask]  # (branches, levels, M, n_code)
    targets = torch.cat([codes, codes], dim=2)[:, :, mask]
    loss = F.cross_entropy(logits.flatten(0, 2), targets.flatten())
    accuracy = (logits.argmax(-1) == targets).float().mean()
    return loss, {"loss": float(loss.detach()), "accuracy": float(accuracy)}


def pretrain_foundation_model(
    fm: NeuroRVQFoundationModel, tokenizer: NeuroRVQTokenizer, windows: np.ndarray,
    channels: Sequence[str], config: PretrainConfig | None = None,
    checkpoint: Path | None = None, device: str = "cpu", progress: bool = True,
) -> list[dict[str, float]]:
    """Pretrain ``fm`` in place on (n, C, A*200) windows; resumes from ``checkpoint``."""
    config = config or PretrainConfig()
    if not fm.config.pretraining_heads:
        raise ValueError("The foundation model has no pretraining heads; build it with "
                         "new_foundation_model() or pretraining_heads=True.")
    if fm.config.n_code != tokenizer.config.n_code:
        raise ValueError(f"The FM heads predict {fm.config.n_code} codes but the tokenizer "
                         f"has {tokenizer.config.n_code}; build the FM from this tokenizer.")
    seed_everything(config.seed)
    fm.to(device).train()
    tokenizer.to(device).eval()
    optimizer = torch.optim.AdamW(
        param_groups(fm, config.lr, config.weight_decay, 1.0, fm.config.depth), lr=config.lr
    )
    generator = torch.Generator().manual_seed(config.seed)
    history: list[dict[str, float]] = []
    start = 0
    state = load_state(checkpoint)
    if state is not None:
        fm.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        generator.set_state(state["generator"])
        history, start = state["history"], state["step"]
    data = torch.as_tensor(windows, dtype=torch.float32)
    bar = tqdm(range(start, config.steps), desc="FM pretraining", disable=not progress,
               initial=start, total=config.steps)
    for step in bar:
        x, names = random_batch(data, channels, config.batch_size, config.max_channels, generator)
        warmup_linear(optimizer, step, config.warmup_steps, config.steps)
        loss, parts = pretrain_step(fm, tokenizer, x.to(device), names, config.mask_ratio,
                                    generator)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(fm.parameters(), 3.0)
        optimizer.step()
        history.append(parts)
        bar.set_postfix(loss=f"{parts['loss']:.3f}", acc=f"{parts['accuracy']:.3f}")
        if checkpoint is not None and ((step + 1) % config.save_every == 0
                                       or step + 1 == config.steps):
            save_state(
                checkpoint, model=fm.state_dict(), optimizer=optimizer.state_dict(),
                generator=generator.get_state(), history=history, step=step + 1,
                config=config.as_dict(),
            )
    fm.eval()
    return history
