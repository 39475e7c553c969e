"""Cut the preprocessed 200 Hz stream into model windows, never across a gap.

Two schedulers share the same input (``feed(samples, times, flags)`` with samples of
shape (n, C), their source-clock times and optional per-sample quality flags):

- ``SlidingWindows``: every ``hop`` samples, the newest ``A * 200`` samples. Window ends
  fall on fixed sample counts since the stream (re)started, so the windows are the same
  whatever the chunk sizes fed in.
- ``MarkerLockedWindows``: one window per marker event, from ``marker + offset`` for
  ``length`` patches, emitted as soon as its data has arrived (ERP paradigms).

Gaps are the inlet's alone (``SampleTimeline``): the processing stage calls ``mark_gap()``
where the inlet broke the stream (lost samples, or stamps that went back), and the
schedulers never judge the times themselves. So every break is counted in the inlet's
gaps; a rule of their own on the times had cut no window where a chunk held back but
complete made the stamps jump, with no counter saying why. After a gap both schedulers
discard what came before and start accumulating again, so no window mixes data across it;
the first sliding window after a gap carries ``gap=True``, and marker windows that would
have spanned one are skipped and counted in ``n_skipped``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from neurorvq_stream.engines import MODEL_RATE
from neurorvq_stream.engines._format import PATCH_SAMPLES

from ._checks import samples_and_times

if TYPE_CHECKING:
    from ._models import BoundDecoder


@dataclass(frozen=True)
class Window:
    """One model input: ``data`` is (C, n_patches * rate) float32 (1 s patches).

    ``t_last`` is the source time of the last sample. ``gap`` says that data before this
    window was discarded because of a gap. ``label``/``marker_time`` come from the marker
    that locked the window (None for sliding windows). ``flags`` (C,) uint8 holds the
    quality flags of its samples (``ChannelFlag`` bits), ``markers`` the ``(time, label)``
    events that fall inside it; ``rejected`` says it has too many flagged channels to be
    classified (both set by the processing stage's quality check); ``tokenize`` and
    ``classifier`` say which models it feeds and ``display`` whether it is one of the run's
    own windows (all three its window path's).
    """

    index: int
    data: np.ndarray
    t_last: float
    gap: bool
    label: str | None = None
    marker_time: float | None = None
    flags: np.ndarray | None = None
    markers: tuple[tuple[float, str], ...] = ()
    rejected: bool = False
    tokenize: bool = True
    classifier: BoundDecoder | None = None
    display: bool = True

    @property
    def t_first(self) -> float:
        """Source time just before the first sample (markers at it belong to the last one)."""
        return self.t_last - self.data.shape[1] / MODEL_RATE


class _GapAwareHistory(ABC):
    """Shared input handling: validation, gaps and a bounded sample history."""

    def __init__(self, rate: float, history: int) -> None:
        if rate <= 0:
            raise ValueError(f"The window rate must be positive, got {rate} Hz.")
        self.rate = float(rate)
        self._history_len = int(history)
        self._data: np.ndarray | None = None
        self._times = np.empty(0)
        self._flags: np.ndarray | None = None
        self._gap_pending = False
        self._n_emitted = 0
        self._count = 0  # samples since the stream (re)started

    def mark_gap(self) -> None:
        """Declare a gap before the next fed sample (the inlet found one upstream)."""
        self._data = None
        self._times = np.empty(0)
        self._flags = None
        self._count = 0
        self._gap_pending = True

    def feed(
        self, samples: np.ndarray, times: np.ndarray, flags: np.ndarray | None = None
    ) -> list[Window]:
        """Add new samples (n, C) with their times (n,) and optional flags (n, C) uint8;
        return the windows now complete."""
        samples, times = samples_and_times(samples, times, None, "feed", np.float32)
        if flags is None:
            flags = np.zeros(samples.shape, np.uint8)
        elif flags.shape != samples.shape:
            raise ValueError(f"feed got flags of shape {flags.shape} for samples "
                             f"{samples.shape}; give one flag byte per sample and channel.")
        if self._data is not None and samples.shape[1] != self._data.shape[1]:
            raise ValueError(
                f"feed got {samples.shape[1]} channels after {self._data.shape[1]}; the "
                "channel set cannot change without restarting the scheduler."
            )
        if samples.shape[0] == 0:
            return []
        return self._extend(samples, times, flags)

    @abstractmethod
    def _extend(self, samples: np.ndarray, times: np.ndarray, flags: np.ndarray) -> list[Window]:
        """Take samples that continue the stream; return the windows they complete."""

    def _append(self, samples: np.ndarray, times: np.ndarray, flags: np.ndarray) -> None:
        self._count += samples.shape[0]
        if self._data is None or self._flags is None:
            # Copies: the caller may reuse its buffers after feed returns.
            self._data, self._times, self._flags = samples.copy(), times.copy(), flags.copy()
        else:
            self._data = np.concatenate([self._data, samples])
            self._times = np.concatenate([self._times, times])
            self._flags = np.concatenate([self._flags, flags])

    def _trim(self) -> None:
        if self._data is not None and self._data.shape[0] > self._history_len:
            self._data = self._data[-self._history_len :]
            self._times = self._times[-self._history_len :]
            self._flags = self._flags[-self._history_len :]

    def _make_window(
        self, start: int, stop: int, label: str | None, marker: float | None
    ) -> Window:
        assert self._data is not None and self._flags is not None
        window = Window(
            index=self._n_emitted,
            data=np.ascontiguousarray(self._data[start:stop].T),
            t_last=float(self._times[stop - 1]),
            gap=self._gap_pending,
            label=label,
            marker_time=marker,
            flags=np.bitwise_or.reduce(self._flags[start:stop], axis=0),
        )
        self._gap_pending = False
        self._n_emitted += 1
        return window


class SlidingWindows(_GapAwareHistory):
    """Every ``hop_s`` seconds, the newest ``n_patches`` seconds of the 200 Hz stream."""

    def __init__(
        self,
        n_patches: int = 4,
        hop_s: float = 0.5,
        rate: float = MODEL_RATE,
    ) -> None:
        if n_patches < 1:
            raise ValueError(f"n_patches must be >= 1, got {n_patches}.")
        self.length = n_patches * PATCH_SAMPLES
        self.hop = round(hop_s * rate)
        if self.hop < 1:
            raise ValueError(f"hop_s={hop_s} is shorter than one sample at {rate} Hz.")
        super().__init__(rate, self.length)
        self.n_patches = int(n_patches)

    def _extend(self, samples: np.ndarray, times: np.ndarray, flags: np.ndarray) -> list[Window]:
        before = self._count
        self._append(samples, times, flags)
        assert self._data is not None
        offset = self._count - self._data.shape[0]  # count of self._data[0]
        # Window ends at counts length + j * hop, for those that just became complete.
        first_j = max(0, -(-(before + 1 - self.length) // self.hop))
        windows = []
        end = self.length + first_j * self.hop
        while end <= self._count:
            windows.append(self._make_window(end - self.length - offset, end - offset, None, None))
            end += self.hop
        self._trim()
        return windows


class MarkerLockedWindows(_GapAwareHistory):
    """One window per marker: ``length_patches`` seconds starting at ``marker + offset_s``.

    Markers may arrive before or after their data, as long as the data is still within
    ``history_s``; older ones (or ones whose window would span a gap) are skipped and
    counted in ``n_skipped``.
    """

    def __init__(
        self,
        offset_s: float = 0.0,
        length_patches: int = 1,
        rate: float = MODEL_RATE,
        history_s: float = 10.0,
    ) -> None:
        if length_patches < 1:
            raise ValueError(f"length_patches must be >= 1, got {length_patches}.")
        self.length = length_patches * PATCH_SAMPLES
        history = max(round(history_s * rate), self.length)
        super().__init__(rate, history)
        self.offset_s = float(offset_s)
        self.n_patches = int(length_patches)
        self.n_skipped = 0
        self._pending: list[tuple[float, str]] = []

    def add_marker(self, time: float, label: str) -> list[Window]:
        """Register a marker event (source-clock time, label); return windows now complete."""
        self._pending.append((float(time), str(label)))
        self._pending.sort(key=lambda marker: marker[0])
        return self._collect()

    def _extend(self, samples: np.ndarray, times: np.ndarray, flags: np.ndarray) -> list[Window]:
        self._append(samples, times, flags)
        windows = self._collect()
        self._trim()
        return windows

    def _collect(self) -> list[Window]:
        if self._data is None:
            return []
        windows = []
        half = 0.5 / self.rate
        waiting = []
        for marker_time, label in self._pending:
            start_time = marker_time + self.offset_s
            start = int(np.searchsorted(self._times, start_time - half))
            if start_time < self._times[0] - half:
                self.n_skipped += 1  # its start is gone: trimmed away or before a gap
            elif start + self.length <= self._times.size:
                windows.append(self._make_window(start, start + self.length, label, marker_time))
            else:
                waiting.append((marker_time, label))
        self._pending = waiting
        return windows
