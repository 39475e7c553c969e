"""What the display remembers between frames, kept apart from Qt so it can be tested alone.

The pipeline publishes overlapping windows; the display wants one continuous scrolling
trace, a few minutes of token statistics and a prediction history. These classes fold
each new ``WindowResult`` into that state with plain numpy and nothing else, so a frame
costs the same however many windows arrived since the last one.
"""

from __future__ import annotations

from collections import deque

import numpy as np

from neurorvq_stream.decoders import TrialScorer
from neurorvq_stream.engines import MODEL_RATE
from neurorvq_stream.streamer import WindowResult


class SignalBuffer:
    """The last ``duration_s`` seconds of signal (and reconstruction) for every channel.

    Windows overlap (a hop is shorter than a window), so only the samples newer than the
    buffer's end are appended, located by the window's ``t_last``. A jump larger than one
    window (a gap) is filled with NaN so the trace visibly breaks instead of splicing.
    """

    def __init__(self, duration_s: float = 10.0, rate: float = MODEL_RATE) -> None:
        if duration_s <= 0:
            raise ValueError(f"The display duration must be positive, got {duration_s} s.")
        self.rate = rate
        self.n_samples = round(duration_s * rate)
        self.channels: tuple[str, ...] = ()
        self.signal = np.empty((0, self.n_samples), dtype=np.float32)
        self.reconstruction = np.empty((0, self.n_samples), dtype=np.float32)
        self.t_end: float | None = None
        self._markers: dict[tuple[float, str], None] = {}

    def reset(self, channels: tuple[str, ...]) -> None:
        """Start over, e.g. when the channel mapping changed under the display."""
        self.channels = tuple(channels)
        shape = (len(channels), self.n_samples)
        self.signal = np.full(shape, np.nan, dtype=np.float32)
        self.reconstruction = np.full(shape, np.nan, dtype=np.float32)
        self.t_end = None
        self._markers.clear()

    def add(self, result: WindowResult) -> None:
        """Append the part of ``result`` that the buffer has not seen yet."""
        signal = np.asarray(result.signal, dtype=np.float32)
        if signal.ndim != 2 or signal.shape[0] != len(result.channels):
            raise ValueError(
                f"WindowResult {result.index}: signal must be (channels, samples) with "
                f"{len(result.channels)} channels, got shape {signal.shape}."
            )
        if tuple(result.channels) != self.channels:
            self.reset(tuple(result.channels))
        recon = result.reconstruction
        if recon is not None and np.shape(recon) != signal.shape:
            raise ValueError(
                f"WindowResult {result.index}: reconstruction shape {np.shape(recon)} does "
                f"not match signal shape {signal.shape}."
            )
        n_window = signal.shape[1]
        if self.t_end is None:
            n_new = n_window
            n_gap = 0
        else:
            step = round((result.t_last - self.t_end) * self.rate)
            if step <= 0:
                return  # duplicate or out-of-order window: nothing new to show
            n_new = min(step, n_window)
            n_gap = step - n_new
            if result.gap and n_gap == 0:
                n_gap = 1  # keep the pipeline's gap visible even if the clocks line up
        self._shift_in(self.signal, signal[:, n_window - n_new :], n_gap)
        new_recon = (
            np.full((signal.shape[0], n_new), np.nan, dtype=np.float32)
            if recon is None
            else np.asarray(recon, dtype=np.float32)[:, n_window - n_new :]
        )
        self._shift_in(self.reconstruction, new_recon, n_gap)
        self.t_end = result.t_last
        for marker in result.markers:
            self._markers[(float(marker[0]), str(marker[1]))] = None
        t_start = self.t_end - self.n_samples / self.rate
        self._markers = {m: None for m in self._markers if m[0] > t_start}

    def _shift_in(self, buffer: np.ndarray, new: np.ndarray, n_gap: int) -> None:
        """Scroll ``buffer`` left and write ``n_gap`` NaN columns then ``new`` at the end."""
        n_total = min(n_gap + new.shape[1], self.n_samples)
        if n_total < self.n_samples:
            buffer[:, : self.n_samples - n_total] = buffer[:, n_total:]
        tail = new[:, max(0, new.shape[1] - n_total) :]
        buffer[:, self.n_samples - n_total : self.n_samples - tail.shape[1]] = np.nan
        buffer[:, self.n_samples - tail.shape[1] :] = tail

    def times(self) -> np.ndarray:
        """Sample times relative to the newest sample (seconds, last one is 0)."""
        return (np.arange(self.n_samples) - (self.n_samples - 1)) / self.rate

    def markers(self) -> list[tuple[float, str]]:
        """Markers inside the buffer, as (time relative to the newest sample, label)."""
        if self.t_end is None:
            return []
        return sorted((t - self.t_end, label) for t, label in self._markers)


class TokenUsage:
    """How many distinct codes each (branch, RVQ level) used over the last ``window_s``.

    A codebook collapsing onto a few codes, or a stream producing one code everywhere, is
    visible here long before it shows in the predictions. Counts are kept per code and
    updated as windows enter and leave, so a frame never re-scans minutes of tokens.
    """

    def __init__(self, window_s: float = 120.0) -> None:
        self.window_s = window_s
        self._history: deque[tuple[float, np.ndarray, np.ndarray]] = deque()
        self._counts = np.zeros((0, 0), dtype=np.int32)

    def add(self, t_last: float, tokens: np.ndarray) -> None:
        """Remember the codes of one window (``tokens`` is (branches, levels, C*A))."""
        tokens = np.asarray(tokens)
        if tokens.ndim != 3:
            raise ValueError(
                f"tokens must be (branches, levels, channels*patches), got shape {tokens.shape}."
            )
        n_rows = tokens.shape[0] * tokens.shape[1]
        flat = tokens.reshape(n_rows, tokens.shape[2])
        if self._counts.shape[0] != n_rows:
            self._history.clear()
            self._counts = np.zeros((n_rows, 0), dtype=np.int32)
        if flat.size and int(flat.max()) >= self._counts.shape[1]:
            grown = np.zeros((n_rows, int(flat.max()) + 1), dtype=np.int32)
            grown[:, : self._counts.shape[1]] = self._counts
            self._counts = grown
        # one count per code and window, so a code repeated in a window counts once
        rows = np.repeat(np.arange(n_rows), flat.shape[1])
        present = np.zeros_like(self._counts, dtype=bool)
        present[rows, flat.reshape(-1)] = True
        row_ix, code_ix = np.nonzero(present)
        self._counts[row_ix, code_ix] += 1
        self._history.append((t_last, row_ix, code_ix))
        while self._history and self._history[0][0] < t_last - self.window_s:
            _, old_rows, old_codes = self._history.popleft()
            self._counts[old_rows, old_codes] -= 1

    def distinct_counts(self) -> np.ndarray:
        """Distinct codes per (branch, level), flattened branch-major (index 8*b + level)."""
        return np.count_nonzero(self._counts, axis=1)


def class_probabilities(result: WindowResult) -> tuple[np.ndarray, tuple[str, ...]]:
    """The class probabilities of a window as a vector summing to one, with class names.

    A binary head gives one sigmoid output; it is shown as the two classes it decides
    between so that bars and accuracy read the same for every head.
    """
    if result.probabilities is None:
        raise ValueError(f"WindowResult {result.index} has no probabilities.")
    probs = np.asarray(result.probabilities, dtype=np.float64).reshape(-1)
    if probs.size == 1:
        probs = np.array([1.0 - probs[0], probs[0]])
    names = tuple(result.class_names) or tuple(str(k) for k in range(probs.size))
    if len(names) != probs.size:
        raise ValueError(
            f"WindowResult {result.index}: {probs.size} probabilities but "
            f"{len(names)} class names {names}."
        )
    return probs, names


class PredictionHistory:
    """Class probabilities over time and, for windows that answer a trial, their score.

    Trials are scored by ``decoders.TrialScorer`` (the scorer of the report and the closed
    loop) from the window's own ``truth``, ``decision`` and probabilities.
    """

    def __init__(self, max_windows: int = 600) -> None:
        self.times: deque[float] = deque(maxlen=max_windows)
        self.probabilities: deque[np.ndarray] = deque(maxlen=max_windows)
        self.class_names: tuple[str, ...] = ()
        self.scorer = TrialScorer((), {})

    def add(self, result: WindowResult) -> None:
        """Record one window's prediction (and score it if it answers a trial)."""
        probs, names = class_probabilities(result)
        if names != self.class_names:
            self.times.clear()
            self.probabilities.clear()
            self.class_names = names
            self.scorer = TrialScorer(names, {c: (c,) for c in names})
        self.times.append(result.t_last)
        self.probabilities.append(probs)
        self.scorer.add(result.truth, result.marker_time, result.decision or "", probs)

    def balanced_accuracy(self) -> float | None:
        """Mean per-class recall over the decided trials so far (None before any)."""
        return self.scorer.balanced_accuracy() if self.scorer.decided else None

    def n_labelled(self) -> int:
        """How many trials the accuracy is based on (decided ones)."""
        return len(self.scorer.decided)
