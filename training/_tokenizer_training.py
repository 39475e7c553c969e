"""Tokenizer training: spectral reconstruction losses + EMA residual codebooks.

Loss = log-amplitude MSE + phase MSE (sin and cos) + z-scored signal MSE
+ ``commitment_weight`` (0.4, as published) x commitment of every RVQ level; the codebooks
themselves follow their assignments by EMA after a k-means start (``_codebooks``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np
import torch

from neurorvq_stream.engines import NeuroRVQConfig
from neurorvq_stream.engines._api import prepare_window
from neurorvq_stream.engines._tokenizer import NeuroRVQTokenizer

from ._batches import random_batch
from ._checkpointing import seed_everything
from ._codebooks import EmaResidualCodebooks, codebook_usage, reset_codebooks
from ._loop import Evaluation, Session, run_settings, run_steps
from ._losses import tokenizer_reconstruction_losses, zscored_mse_and_corr
from ._schedule import param_groups, warmup_linear


@dataclass
class TokenizerTrainConfig:
    """Settings of a tokenizer run."""

    steps: int = 1000
    batch_size: int = 16
    max_channels: int = 32
    lr: float = 1e-3
    weight_decay: float = 1e-4
    warmup_steps: int = 50
    commitment_weight: float = 0.4
    ema_decay: float = 0.99
    level_gains: bool = False
    seed: int = 0

    def as_dict(self) -> dict:
        return asdict(self)


def new_tokenizer(config: NeuroRVQConfig, seed: int = 0) -> NeuroRVQTokenizer:
    """A freshly initialised tokenizer whose codebooks wait for their k-means start."""
    torch.manual_seed(seed)
    model = NeuroRVQTokenizer(config)
    reset_codebooks(model)
    return model


def _quantizers(model: NeuroRVQTokenizer, config: TokenizerTrainConfig) -> list:
    return [
        EmaResidualCodebooks(
            getattr(model, f"quantize_{i + 1}"), decay=config.ema_decay,
            generator=torch.Generator().manual_seed(config.seed + i),
            level_gains=config.level_gains,
        )
        for i in range(model.config.n_branches)
    ]


def tokenizer_step(
    model: NeuroRVQTokenizer, quantizers: list[EmaResidualCodebooks], x: torch.Tensor,
    channels: Sequence[str], commitment_weight: float, update: bool = True,
) -> tuple[torch.Tensor, dict[str, float]]:
    """One forward pass over windows ``x`` (B, C, A*200): total loss and its parts."""
    w = prepare_window(x, channels, model.config, x.device)
    features = model.encode_features(w.patches, w.spatial_ix, w.time_ix)
    outs = [q(f, update=update) for q, f in zip(quantizers, features, strict=True)]
    quantized = torch.stack([o[0] for o in outs])
    commitment = torch.stack([o[1] for o in outs]).mean()
    amplitude, sin, cos = model.decode(quantized, w.spatial_ix, w.time_ix)
    parts, _ = tokenizer_reconstruction_losses(model, w.patches, amplitude, sin, cos)
    total = parts["amplitude"] + parts["phase"] + parts["signal"]
    total = total + commitment_weight * commitment
    logged = {k: float(v.detach()) for k, v in parts.items()}
    return total, logged | {"commitment": float(commitment.detach()),
                     "total": float(total.detach())}


def train_tokenizer(
    model: NeuroRVQTokenizer, windows: np.ndarray, channels: Sequence[str],
    config: TokenizerTrainConfig | None = None, device: str = "cpu", progress: bool = True,
    session: Session | None = None, evaluation: Evaluation | None = None,
) -> list[dict[str, float]]:
    """Train ``model`` in place on (n, C, A*200) windows; returns every step's loss parts.

    With ``session.run_dir`` the run resumes from, and saves to, that directory; a later
    call with the same config continues exactly where an interrupted one stopped.
    """
    config = config or TokenizerTrainConfig()
    seed_everything(config.seed)
    model.to(device)
    quantizers = _quantizers(model, config)
    groups = param_groups(model, config.lr, config.weight_decay, 1.0, model.config.depth_encoder)
    optimizer = torch.optim.AdamW(groups, lr=config.lr)
    generator = torch.Generator().manual_seed(config.seed)
    data = torch.as_tensor(windows, dtype=torch.float32)

    def step(i: int) -> dict[str, float]:
        x, names = random_batch(data, channels, config.batch_size, config.max_channels, generator)
        warmup_linear(optimizer, i, config.warmup_steps, config.steps)
        loss, parts = tokenizer_step(model, quantizers, x.to(device), names,
                                     config.commitment_weight)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        return parts

    parts = {"model": model, "optimizer": optimizer, "batches": generator}
    parts |= {f"codebook_rng_{i}": q.generator for i, q in enumerate(quantizers)}
    return run_steps("tokenizer", config.steps, step, parts,
                     run_settings(config.as_dict(), data), session, evaluation, progress)


@torch.no_grad()
def evaluate_tokenizer(
    model: NeuroRVQTokenizer, windows: np.ndarray, channels: Sequence[str],
    batch_size: int = 32, device: str = "cpu",
) -> dict[str, float]:
    """Held-out z-scored MSE (paper metric), correlation and codebook usage on ``windows``."""
    model.to(device).eval()
    mses, corrs, weights, codes = [], [], [], []
    for start in range(0, len(windows), batch_size):
        x = windows[start : start + batch_size]
        w = prepare_window(x, channels, model.config, device)
        code, quantized = model.quantize(model.encode_features(w.patches, w.spatial_ix,
                                                               w.time_ix))
        amplitude, sin, cos = model.decode(quantized, w.spatial_ix, w.time_ix)
        mean, std = model.amplitude_stats(w.patches)
        mse, corr = zscored_mse_and_corr(
            w.patches, model.spectrum_to_signal(amplitude, sin, cos, mean, std)
        )
        mses.append(mse)
        corrs.append(corr)
        weights.append(len(x))
        codes.append(code.flatten(2))
    usage = codebook_usage(torch.cat(codes, dim=2), model.config.n_code)
    return {
        "zscored_mse": float(np.average(mses, weights=weights)),
        "correlation": float(np.average(corrs, weights=weights)),
        "codebook_usage": usage,
        "n_windows": len(windows),
    }
