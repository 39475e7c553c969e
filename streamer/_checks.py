"""Argument checks shared by the stages that take blocks of samples with their times."""

from __future__ import annotations

import numpy as np
from numpy.typing import DTypeLike


def samples_and_times(
    samples: np.ndarray, times: np.ndarray, n_channels: int | None, where: str,
    dtype: DTypeLike = None,
) -> tuple[np.ndarray, np.ndarray]:
    """``samples`` (n, C) and ``times`` (n,) as arrays, or a ValueError naming ``where``.

    ``n_channels`` None accepts any channel count.
    """
    samples = np.asarray(samples, dtype=dtype)
    times = np.asarray(times, dtype=np.float64)
    if samples.ndim != 2 or (n_channels is not None and samples.shape[1] != n_channels):
        expected = f"(n, {n_channels})" if n_channels is not None else "(n, n_channels)"
        raise ValueError(f"{where} expects samples of shape {expected}, got {samples.shape}.")
    if times.shape != (samples.shape[0],):
        raise ValueError(f"{where} needs one time per sample: {samples.shape[0]} samples but "
                         f"times of shape {times.shape}.")
    return samples, times
