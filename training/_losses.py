"""NeuroRVQ training objectives, shared by the tokenizer trainer and the evaluation.

Tokenizer targets follow the paper: the decoder predicts the standardized log-amplitude
spectrum and the sine / cosine of the phase of every 200-sample patch; the signal rebuilt
from them (with the engines' own inverse DFT) is compared, z-scored per window, with the
z-scored input. The standardization statistics are the ones inference uses to decode.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from neurorvq_stream.engines._tokenizer import NeuroRVQTokenizer, window_standardize


def phase_targets(patches: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """sin and cos of the phase of ``FFT_200(patch)`` (B, N, 200)."""
    angle = torch.angle(torch.fft.fft(patches.float(), dim=-1))
    return torch.sin(angle), torch.cos(angle)


def tokenizer_reconstruction_losses(
    tokenizer: NeuroRVQTokenizer, patches: torch.Tensor, amplitude: torch.Tensor,
    sin: torch.Tensor, cos: torch.Tensor,
) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    """Log-amplitude MSE, phase (sin + cos) MSE, z-scored signal MSE; and the signal (uV)."""
    mean, std = tokenizer.amplitude_stats(patches)
    target_amp = (tokenizer.log_amplitude(patches) - mean) / std
    target_sin, target_cos = phase_targets(patches)
    signal = tokenizer.spectrum_to_signal(amplitude, sin, cos, mean, std)
    losses = {
        "amplitude": F.mse_loss(amplitude, target_amp),
        "phase": F.mse_loss(sin, target_sin) + F.mse_loss(cos, target_cos),
        "signal": F.mse_loss(window_standardize(signal), window_standardize(patches)),
    }
    return losses, signal


def zscored_mse_and_corr(x: torch.Tensor, reconstruction: torch.Tensor) -> tuple[float, float]:
    """The paper's metric (MSE of per-window z-scored signals) and mean per-patch correlation.

    ``x`` and ``reconstruction`` are (B, N, 200) patches of the same windows.
    """
    mse = float(F.mse_loss(window_standardize(reconstruction.double()),
                           window_standardize(x.double())))
    a = x.double() - x.double().mean(-1, keepdim=True)
    b = reconstruction.double() - reconstruction.double().mean(-1, keepdim=True)
    corr = (a * b).sum(-1) / (a.norm(dim=-1) * b.norm(dim=-1)).clamp_min(1e-12)
    return mse, float(corr.mean())


def symmetric_mask(
    n_windows: int, n_tokens: int, ratio: float, generator: torch.Generator
) -> torch.Tensor:
    """LaBraM-style symmetric masking: random masks (True = masked) stacked with complements.

    Returns (2 * n_windows, n_tokens): rows ``i`` and ``n_windows + i`` mask complementary
    token sets of window ``i``, so each token is a prediction target once per window.
    """
    n_mask = min(n_tokens - 1, max(1, round(ratio * n_tokens)))
    order = torch.rand(n_windows, n_tokens, generator=generator).argsort(dim=1)
    mask = torch.zeros(n_windows, n_tokens, dtype=torch.bool)
    mask.scatter_(1, order[:, :n_mask], True)
    return torch.cat([mask, ~mask])
