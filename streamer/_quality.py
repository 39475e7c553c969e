"""Can a window be trusted? Per-channel flags, and the stream-level rate and unit checks.

Each fact is computed once, where its data is, and travels with the window:

- the preprocessor marks samples whose input was NaN/inf (held at the last good value,
  ``NONFINITE``); acquisition and processing mark every sample of a stream whose rate or
  unit is in doubt (``RATE``, ``UNIT``);
- the window scheduler ORs those marks over each window;
- :func:`assess_window` adds ``FLAT`` (peak-to-peak below ``flat_uv``) and ``CLIPPED``
  (too many samples at the clip level) and decides whether the window is fit to classify.

Stream-level checks: :class:`RateMonitor` compares the rate at which samples *arrive*
with the stream's nominal rate (a stream declaring 128 Hz that sends 256 Hz would otherwise
run at twice the time scale); :class:`UnitCheck` looks at amplitudes, so a stream in volts
without unit metadata is not silently taken as microvolts.
"""

from __future__ import annotations

import enum
import warnings
from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from ._config import QualityConfig


class ChannelFlag(enum.IntFlag):
    """Why a channel of a window is not trusted (bits of a ``uint8`` per channel)."""

    NONFINITE = 1  # NaN/inf in the input, held at the channel's last finite value
    CLIPPED = 2  # reached the clip level (+-clip_uv)
    FLAT = 4  # peak-to-peak below quality.flat_uv: disconnected or saturated electrode
    RATE = 8  # the stream's measured rate differs from its nominal rate
    UNIT = 16  # amplitudes far outside EEG: the unit is probably wrong


#: Flag kinds in bit order, with the short names used on the status line and outlets.
FLAG_NAMES: tuple[tuple[ChannelFlag, str], ...] = (
    (ChannelFlag.NONFINITE, "nonfinite"),
    (ChannelFlag.CLIPPED, "clipped"),
    (ChannelFlag.FLAT, "flat"),
    (ChannelFlag.RATE, "rate"),
    (ChannelFlag.UNIT, "unit"),
)


def flag_names(bits: int) -> tuple[str, ...]:
    """Names of the flags set in ``bits`` (e.g. ``("nonfinite", "flat")``)."""
    return tuple(name for flag, name in FLAG_NAMES if bits & flag)


def count_by_kind(flags: np.ndarray) -> dict[str, int]:
    """How many channels carry each flag kind, for the status line and metrics outlet."""
    flags = np.asarray(flags, dtype=np.uint8)
    return {name: int(np.count_nonzero(flags & flag)) for flag, name in FLAG_NAMES}


@dataclass(frozen=True)
class Assessment:
    """Flags of one window (C,) uint8, and whether it may be classified."""

    flags: np.ndarray
    flagged_fraction: float
    rejected: bool


def assess_window(
    data: np.ndarray, sample_flags: np.ndarray, quality: QualityConfig, clip_uv: float
) -> Assessment:
    """Complete a window's per-channel flags and decide whether it is fit to classify.

    ``data`` is the window (C, n) in uV (already clipped at ``clip_uv``), ``sample_flags``
    the OR of its samples' flags (C,). A channel is ``FLAT`` below ``quality.flat_uv``
    peak-to-peak and ``CLIPPED`` when at least ``quality.clipped_fraction`` of its samples
    sit at the clip level; the window is rejected when more than
    ``quality.max_flagged_fraction`` of its channels carry any flag.
    """
    flags = np.asarray(sample_flags, dtype=np.uint8).copy()
    if data.shape[1]:
        flags[np.ptp(data, axis=1) < quality.flat_uv] |= np.uint8(ChannelFlag.FLAT)
        at_clip = np.mean(np.abs(data) >= np.float32(clip_uv), axis=1)
        flags[at_clip >= quality.clipped_fraction] |= np.uint8(ChannelFlag.CLIPPED)
    fraction = float(np.count_nonzero(flags)) / max(1, len(flags))
    return Assessment(flags, fraction, fraction > quality.max_flagged_fraction)


def rate_warning(measured: float, expected: float) -> str:
    """What ``run`` says of a stream whose samples arrive off the rate it declares."""
    return (f"samples arrive at {measured:.1f} Hz, not the declared {expected:g} Hz: check "
            "the amplifier's rate setting")


def unit_warning(verdict: str) -> str:
    """What ``run`` says of a stream whose amplitudes cannot be microvolts."""
    return f"{verdict}; set stream.unit (--unit) to the unit the amplifier sends"


class RateMonitor:
    """Measured sampling rate from sample *arrivals* over the last ``span_s`` seconds.

    Arrival time, not LSL timestamps: an outlet that declares 128 Hz and pushes 256 samples a
    second stamps them (by liblsl's back-dating) as if they were 128 Hz, so only the count
    per second of this machine's clock shows the mismatch. The rate is the least-squares
    slope of the cumulative count against arrival time, so amplifiers that send large,
    irregular chunks do not look off-rate. ``expected`` is the rate the stream should
    arrive at (its nominal rate, times the replay speed a player declares). A stall restarts
    the measurement, and the inlet counts a gap's lost samples as sent, so an outage is not
    mistaken for a slow rate.
    """

    def __init__(
        self, expected: float, tolerance: float, span_s: float = 10.0, min_span_s: float = 3.0
    ) -> None:
        self.expected = float(expected)
        self.tolerance = float(tolerance)
        self.span_s = float(span_s)
        self.min_span_s = float(min_span_s)
        self._times: deque[float] = deque()
        self._counts: deque[int] = deque()
        self._count = 0
        self._fitted_at = -np.inf
        self.measured: float = float("nan")

    def restart(self) -> None:
        """Forget the history (after a gap or stall)."""
        self._times.clear()
        self._counts.clear()
        self._count = 0
        self._fitted_at = -np.inf
        self.measured = float("nan")

    def update(self, n_samples: int, now: float) -> None:
        """Count ``n_samples`` that arrived at ``now`` (monotonic seconds)."""
        self._count += n_samples
        self._times.append(now)
        self._counts.append(self._count)
        while now - self._times[0] > self.span_s:
            self._times.popleft()
            self._counts.popleft()
        # Refit twice a second at most: the acquisition thread must stay light.
        if now - self._times[0] >= self.min_span_s and now - self._fitted_at >= 0.5:
            self._fitted_at = now
            self.measured = float(np.polyfit(np.asarray(self._times) - now,
                                             np.asarray(self._counts, float), 1)[0])

    @property
    def mismatch(self) -> bool:
        """True once a measurement exists and is off by more than ``tolerance`` (relative)."""
        return bool(np.isfinite(self.measured)) and (
            abs(self.measured / self.expected - 1.0) > self.tolerance
        )


class UnitCheck:
    """Flags a stream whose amplitudes, once scaled to uV, cannot be EEG.

    Scalp EEG has a median absolute deviation of roughly 1-100 uV; values below
    ``low_uv`` on every channel are what volts read as microvolts look like (10^6 too
    small), above ``high_uv`` what nanovolts or raw ADC counts look like. Judged on the
    median over channels of each channel's median absolute deviation, over the first
    ``seconds`` of data (before the first window is complete) and then on every block of
    at least that length, so a user who fixes the amplifier's setting sees the flag clear.
    """

    def __init__(self, rate: float, seconds: float = 0.5, low_uv: float = 0.05,
                 high_uv: float = 50_000.0) -> None:
        self.n_needed = max(1, round(rate * seconds))
        self.low_uv = float(low_uv)
        self.high_uv = float(high_uv)
        self._pending: list[np.ndarray] = []
        self._n_pending = 0
        self.typical_uv: float = float("nan")

    def update(self, x_uv: np.ndarray) -> None:
        """Add input samples (n, C) already scaled to uV (non-finite values ignored)."""
        self._pending.append(x_uv)
        self._n_pending += len(x_uv)
        if self._n_pending < self.n_needed:
            return
        block = np.concatenate(self._pending)
        self._pending, self._n_pending = [], 0
        with warnings.catch_warnings():  # an all-NaN channel has no median: NaN, expected
            warnings.simplefilter("ignore", RuntimeWarning)
            centre = np.nanmedian(block, axis=0)
            mad = np.nanmedian(np.abs(block - centre), axis=0)
        if np.isfinite(mad).any():
            self.typical_uv = float(np.nanmedian(mad))

    @property
    def verdict(self) -> str | None:
        """None while plausible (or not yet known), else what the amplitudes suggest."""
        if not np.isfinite(self.typical_uv) or self.typical_uv == 0.0:
            return None
        if self.typical_uv < self.low_uv:
            return (f"amplitudes are ~{self.typical_uv:.2g} uV, far below EEG: the stream is "
                    "probably in volts or millivolts")
        if self.typical_uv > self.high_uv:
            return (f"amplitudes are ~{self.typical_uv:.3g} uV, far above EEG: the stream is "
                    "probably in nanovolts or raw ADC counts")
        return None
