"""Causal preprocessing of a live EEG stream, with filter state carried across chunks.

Order, following the NeuroRVQ authors' offline recipe made causal:
unit scale to uV -> notch at the line frequency and its harmonics -> Butterworth
band-pass (order 3) -> resample to 200 Hz -> clip at +-500 uV.
Filtering runs at the source rate, before resampling, so the band-pass (44.5 Hz edge)
also serves as a first anti-aliasing stage; the resampler's own low-pass does the rest.

Resampler: the default 'polyphase' streams the Kaiser-windowed FIR of
``scipy.signal.resample_poly`` (designed by ``scipy.signal.firwin``) with its input history
carried across chunks; its output equals ``resample_poly`` on the whole signal and lags
the input by a fixed 50 ms (10 / source_rate s below 200 Hz). 'soxr'
(``soxr.ResampleStream``, HQ) is kept for source rates that are not a ratio of small
integers to 200 Hz, but libsoxr releases its output in large blocks: measured here, its
output lags the input by 0.5 to 3.5 s at 200 Hz (about 1 s in its variable-rate mode),
too much for closed-loop use.

Timing: output sample ``k`` (counted from the last ``reset``) is aligned with input
sample position ``k * source_rate / target_rate`` (counted the same way): both
resamplers compensate their own delay, so ``process`` returns each output sample's source
time interpolated from the input timestamps it was given (exact even for jittered or
dejittered timestamps). What the resampler does not remove is its *latency*: output
``k`` is produced only once the input around it has arrived (``resampler_latency_s``).
The causal IIR filters add a frequency-dependent group delay that is a property of the
signal, not of the timestamps, and is not subtracted.

Non-finite input (NaN/inf, e.g. an amplifier dropping a channel) never enters the filter
state: each such value is replaced by that channel's last finite value (0 before any),
and the output samples of that chunk are flagged ``NONFINITE`` for that channel. Holding
the last value, rather than writing 0, avoids a step of the full DC offset into the
band-pass.
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass
from fractions import Fraction
from typing import TYPE_CHECKING, Literal

import numpy as np
import soxr
from scipy import signal

from neurorvq_stream.engines import MODEL_RATE

if TYPE_CHECKING:
    from neurorvq_stream.engines import Preprocessing

from ._checks import samples_and_times
from ._quality import ChannelFlag

_UNIT_SCALES = {
    "v": 1e6,
    "volt": 1e6,
    "volts": 1e6,
    "mv": 1e3,
    "millivolt": 1e3,
    "millivolts": 1e3,
    "uv": 1.0,
    "µv": 1.0,
    "μv": 1.0,
    "microvolt": 1.0,
    "microvolts": 1.0,
    "nv": 1e-3,
    "nanovolt": 1e-3,
    "nanovolts": 1e-3,
}

# Largest denominator accepted for the rational ratio target/source of the polyphase path.
_MAX_RATIO_DENOMINATOR = 10_000
# Bound on the gathered (outputs x taps x channels) block, to keep memory flat.
_MAX_GATHER_ELEMENTS = 4_000_000


UNIT_NAMES = ("V, mV, uV, nV (also volts, millivolts, microvolts, µV, nanovolts, or mne-lsl's "
              "power-of-ten exponent of volts: 0, -3, -6, -9)")

# mne-lsl writes a channel's unit as the power of ten of its SI unit ("0": volts, "-6":
# microvolts; MNE's ``unit_mul``), alone or before the unit's name ("-6 V"). Exponents
# from nanovolts to volts are the ones an EEG stream can be in.
_EXPONENT = re.compile(r"([+-]?\d+)(?:v|volts?)?")
_EXPONENTS = range(-9, 1)


def unit_scale(unit: str) -> float | None:
    """Factor that turns values in ``unit`` into microvolts; None for a unit not known.

    ``unit`` is a name (``uV``, ``microvolts``, ...) or a power-of-ten exponent of volts as
    mne-lsl writes it (``"-6"``, ``"-6 V"``).
    """
    text = unit.strip().lower().replace(" ", "")
    exponent = _EXPONENT.fullmatch(text)
    if exponent is not None:
        power = int(exponent.group(1))
        return 10.0 ** (power + 6) if power in _EXPONENTS else None
    return _UNIT_SCALES.get(text)


def unit_scale_from_lsl(unit: str, configured: str | None = None) -> float:
    """Factor that turns the stream's values into microvolts.

    ``configured`` (the run's ``stream.unit``, flag ``--unit``) wins over the stream's
    channel ``unit``: it is how a user fixes a stream whose metadata lacks or misstates
    its unit. Without it, an empty unit (common in LSL apps that never fill the metadata)
    is taken as uV with a warning, because uV is what nearly every EEG amplifier app sends.
    """
    if configured is not None:
        scale = unit_scale(configured)
        if scale is None:
            raise ValueError(
                f"stream.unit {configured!r} is not an EEG unit; set it to one of {UNIT_NAMES}."
            )
        if unit.strip() and unit_scale(unit) != scale:
            warnings.warn(
                f"The stream declares its channels in {unit!r}; stream.unit {configured!r} "
                "overrides it.",
                stacklevel=2,
            )
        return scale
    if not unit.strip():
        warnings.warn(
            "The stream gives no channel unit; assuming microvolts (uV). If the amplifier "
            "sends volts or millivolts, set stream.unit in the run configuration (or pass "
            "--unit V / --unit mV).",
            stacklevel=2,
        )
        return 1.0
    scale = unit_scale(unit)
    if scale is None:
        raise ValueError(
            f"The stream declares the channel unit {unit!r}, which is not one of {UNIT_NAMES}; "
            "set stream.unit in the run configuration (or pass --unit) to the unit the "
            "amplifier really sends."
        )
    return scale


class _PolyphaseStream:
    """Streaming rational resampler: the same Kaiser FIR as ``scipy.signal.resample_poly``.

    Output ``n`` is computed at input position ``n * down / up`` (delay compensated), so
    it equals ``resample_poly`` on the whole signal, but it needs ``latency_in_samples``
    of input beyond that position before it can be produced.
    """

    def __init__(self, source_rate: float, target_rate: float, n_channels: int) -> None:
        ratio = Fraction(target_rate / source_rate).limit_denominator(_MAX_RATIO_DENOMINATOR)
        if abs(float(ratio) * source_rate - target_rate) > 1e-9 * target_rate:
            raise ValueError(
                f"The rate ratio {target_rate} / {source_rate} Hz is not a rational number "
                f"with denominator <= {_MAX_RATIO_DENOMINATOR}; use resampler='soxr' for "
                "such source rates."
            )
        self.up, self.down = ratio.numerator, ratio.denominator
        max_rate = max(self.up, self.down)
        if max_rate == 1:
            # Source already at the target rate: a single unit tap passes samples through.
            self.half_len = 0
            taps = np.ones(1)
        else:
            self.half_len = 10 * max_rate
            taps = signal.firwin(2 * self.half_len + 1, 1.0 / max_rate, window=("kaiser", 5.0))
            taps = taps * self.up
        self.n_phase_taps = -(-taps.size // self.up)
        padded = np.zeros(self.n_phase_taps * self.up)
        padded[: taps.size] = taps
        # phases[j, m] multiplies input x[k_max - m] for an output whose newest tap is j.
        self.phases = padded.reshape(self.n_phase_taps, self.up).T.copy()
        self.latency_in_samples = self.half_len / self.up
        self.n_channels = n_channels
        self.reset()

    def reset(self) -> None:
        # Inputs before the first sample are zeros, like resample_poly's implicit padding.
        self._history = np.zeros((self.n_phase_taps, self.n_channels))
        self._history_start = -self.n_phase_taps
        self._n_in = 0
        self._n_out = 0

    def process(self, x: np.ndarray) -> np.ndarray:
        self._history = np.concatenate([self._history, x])
        self._n_in += x.shape[0]
        # Output n is ready when its newest input index (n*down + half_len) // up exists.
        n_ready = (self.up * self._n_in - 1 - self.half_len) // self.down + 1
        n_ready = max(n_ready, self._n_out)
        positions = np.arange(self._n_out, n_ready) * self.down + self.half_len
        newest = positions // self.up
        phase = positions - newest * self.up
        out = np.empty((positions.size, self.n_channels))
        block = max(1, _MAX_GATHER_ELEMENTS // (self.n_phase_taps * self.n_channels))
        lags = np.arange(self.n_phase_taps)
        for b in range(0, positions.size, block):
            rows = (newest[b : b + block, None] - lags[None, :]) - self._history_start
            gathered = self._history[rows]
            out[b : b + block] = np.einsum(
                "nt,ntc->nc", self.phases[phase[b : b + block]], gathered
            )
        self._n_out = n_ready
        # Keep only the inputs the next output can still touch.
        next_newest = (n_ready * self.down + self.half_len) // self.up
        keep_from = next_newest - self.n_phase_taps + 1
        drop = keep_from - self._history_start
        if drop > 0:
            self._history = self._history[drop:]
            self._history_start = keep_from
        return out


@dataclass(frozen=True)
class Processed:
    """New 200 Hz output of one :meth:`Preprocessor.process` call.

    ``data`` (n, C) float32 uV, ``times`` (n,) the source-clock time each sample stands
    for, ``flags`` (n, C) uint8 :class:`ChannelFlag` bits (``NONFINITE`` where the input
    held a value).
    """

    data: np.ndarray
    times: np.ndarray
    flags: np.ndarray


class Preprocessor:
    """Causal re-reference + notch + band-pass + resample + clip, one per live stream.

    ``process`` accepts chunks of any size, including empty ones, and the output does
    not depend on how the input was chunked. ``band[0]`` of None (or 0) means no high-pass
    (slow cortical potentials need DC); ``line_freq`` None means no notch; ``reference``
    "average" subtracts the mean over the given channels at each sample (common average).
    """

    def __init__(
        self,
        source_rate: float,
        n_channels: int,
        line_freq: float | None = 50.0,
        band: tuple[float | None, float] = (0.5, 44.5),
        target_rate: float = MODEL_RATE,
        clip_uv: float = 500.0,
        unit_scale: float = 1.0,
        resampler: Literal["polyphase", "soxr"] = "polyphase",
        reference: Literal["none", "average"] = "none",
    ) -> None:
        if not np.isfinite(source_rate) or source_rate <= 0:
            raise ValueError(
                f"The stream's sampling rate must be a positive number of Hz, got "
                f"{source_rate}; irregular-rate streams cannot be preprocessed."
            )
        if n_channels < 1:
            raise ValueError(f"Preprocessor needs at least one channel, got {n_channels}.")
        low, high = band
        low = low or None
        nyquist = min(source_rate, target_rate) / 2.0
        if (low is not None and low <= 0) or not (low or 0) < high < nyquist:
            raise ValueError(
                f"The band-pass {band} Hz must satisfy 0 <= low < high < {nyquist} Hz "
                f"(half the lower of the source rate {source_rate} Hz and target rate "
                f"{target_rate} Hz)."
            )
        if line_freq is not None and line_freq <= 0:
            raise ValueError(f"line_freq must be positive (50 or 60 Hz) or None, got {line_freq}.")
        if resampler not in ("polyphase", "soxr"):
            raise ValueError(f"resampler must be 'polyphase' or 'soxr', got {resampler!r}.")
        if reference not in ("none", "average"):
            raise ValueError(f"reference must be 'none' or 'average', got {reference!r}.")
        self.source_rate = float(source_rate)
        self.target_rate = float(target_rate)
        self.n_channels = int(n_channels)
        self.clip_uv = float(clip_uv)
        self.unit_scale = float(unit_scale)
        self.resampler = resampler
        self.reference = reference
        self.notch_freqs = self._notch_frequencies(line_freq)
        sections = [
            signal.tf2sos(*signal.iirnotch(f, f / 2.0, fs=self.source_rate))
            for f in self.notch_freqs
        ]
        if low is None:
            sections.append(signal.butter(3, high, btype="lowpass", output="sos",
                                          fs=self.source_rate))
        else:
            sections.append(signal.butter(3, (low, high), btype="bandpass", output="sos",
                                          fs=self.source_rate))
        self.sos = np.vstack(sections)
        self._sos_zi = signal.sosfilt_zi(self.sos)
        self._poly = (
            _PolyphaseStream(self.source_rate, self.target_rate, self.n_channels)
            if resampler == "polyphase"
            else None
        )
        self.reset()

    @classmethod
    def of(cls, spec: Preprocessing, source_rate: float, n_channels: int,
           unit_scale: float) -> Preprocessor:
        """The preprocessor ``spec`` describes (a run's section or a decoder's window spec)."""
        return cls(source_rate, n_channels, line_freq=spec.line_freq if spec.notch else None,
                   band=(spec.l_freq, spec.h_freq), clip_uv=spec.clip_uv,
                   unit_scale=unit_scale, reference=spec.reference)

    @property
    def resampler_latency_s(self) -> float:
        """How far the newest output sample lags the newest input sample, in seconds.

        Constant for the polyphase resampler (its look-ahead, 50 ms for any source rate
        above 200 Hz). libsoxr releases output in large blocks, so for 'soxr' this is the
        current backlog, which swings between about 0.5 and 3.5 s.
        """
        if self._poly is not None:
            return self._poly.latency_in_samples / self.source_rate
        return self.n_in / self.source_rate - self.n_out / self.target_rate

    def _notch_frequencies(self, line_freq: float | None) -> tuple[float, ...]:
        if line_freq is None:
            return ()
        n_harmonics = int(np.ceil(self.source_rate / 2.0 / line_freq)) - 1
        freqs = line_freq * np.arange(1, n_harmonics + 1)
        return tuple(float(f) for f in freqs if f < self.source_rate / 2.0)

    def reset(self) -> None:
        """Forget all state (after a gap): the next chunk starts a fresh stream at count 0."""
        self._zi: np.ndarray | None = None
        self._last_finite = np.zeros(self.n_channels)
        self.n_in = 0
        self.n_out = 0
        # Source times of the inputs an output may still be aligned with, from _times_start.
        self._times = np.empty(0)
        self._times_start = 0
        if self._poly is not None:
            self._poly.reset()
        else:
            self._soxr = soxr.ResampleStream(
                self.source_rate,
                self.target_rate,
                self.n_channels,
                dtype="float64",
                quality="HQ",
            )

    def process(self, chunk: np.ndarray, times: np.ndarray) -> Processed:
        """Filter and resample ``chunk`` (n, C) with its source ``times`` (n,)."""
        chunk, times = samples_and_times(chunk, times, self.n_channels, "Preprocessor.process",
                                         np.float64)
        x, held = self._hold_nonfinite(chunk * self.unit_scale)
        if x.shape[0] == 0:
            return Processed(np.empty((0, self.n_channels), np.float32), np.empty(0),
                             np.empty((0, self.n_channels), np.uint8))
        if self.reference == "average":
            x = x - x.mean(axis=1, keepdims=True)
        if self._zi is None:
            # Start in steady state for the first value: no step response from the DC offset.
            self._zi = self._sos_zi[:, :, None] * x[0][None, None, :]
        filtered, self._zi = signal.sosfilt(self.sos, x, axis=0, zi=self._zi)
        n_out0 = self.n_out
        self.n_in += x.shape[0]
        self._times = np.concatenate([self._times, times])
        if self._poly is not None:
            resampled = self._poly.process(filtered)
        else:
            resampled = self._soxr.resample_chunk(filtered)
        self.n_out += resampled.shape[0]
        out = np.clip(resampled, -self.clip_uv, self.clip_uv).astype(np.float32)
        flags = np.zeros(out.shape, np.uint8)
        flags[:, held] |= np.uint8(ChannelFlag.NONFINITE)
        return Processed(out, self._output_times(n_out0, self.n_out), flags)

    def _output_times(self, start: int, stop: int) -> np.ndarray:
        """Source times of outputs ``start..stop``, interpolated at their input positions."""
        positions = np.arange(start, stop) * (self.source_rate / self.target_rate)
        stamps = self._times
        index = self._times_start + np.arange(stamps.size)
        out = np.interp(positions, index, stamps) if stop > start else np.empty(0)
        # Keep only the inputs that the next output can still fall between.
        keep_from = int(np.floor(stop * self.source_rate / self.target_rate)) - 1
        drop = min(max(0, keep_from - self._times_start), max(0, stamps.size - 2))
        self._times = stamps[drop:]
        self._times_start += drop
        return out

    def _hold_nonfinite(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``x`` with NaN/inf replaced by each channel's last finite value, and which
        channels (C,) held any value in this chunk."""
        finite = np.isfinite(x)
        held = ~finite.all(axis=0)
        if held.any():
            x = x.copy()
            for ch in np.flatnonzero(held):
                column = x[:, ch]
                good = finite[:, ch]
                # Index of the latest finite sample at or before each position (-1: none).
                last_good = np.maximum.accumulate(np.where(good, np.arange(column.size), -1))
                x[:, ch] = np.where(
                    last_good >= 0, column[np.maximum(last_good, 0)], self._last_finite[ch]
                )
        if x.shape[0]:
            any_good = finite.any(axis=0)
            last_rows = x.shape[0] - 1 - np.argmax(finite[::-1], axis=0)
            self._last_finite[any_good] = x[last_rows[any_good], np.flatnonzero(any_good)]
        return x, held
