"""Fixed-memory ring buffer of samples and their LSL timestamps at the source rate.

The acquisition thread must never wait for inference or the display, so the buffer is
preallocated once and writing is a couple of array copies. Readers address samples by a
monotonic count (``n_written`` at the time they last looked), not by position, which
lets them detect when the writer has lapped them.

Thread contract: exactly one writer thread; any number of reader threads. ``write``
copies the samples first and publishes the new count last, so a reader that reads
``n_written`` and then ``read(start, stop)`` with ``stop <= n_written`` always gets
complete samples. A reader that falls more than ``capacity`` samples behind gets a
``BufferOverrunError`` instead of silently mixed data. No lock is needed: before copying,
the writer announces how far it is about to write (``_claimed``), and a reader validates
its copy against that announcement after copying.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import DTypeLike


class BufferOverrunError(RuntimeError):
    """The requested samples were overwritten before the reader got to them."""


class RingBuffer:
    """Preallocated circular store of ``(n_samples, n_channels)`` samples plus timestamps."""

    def __init__(self, n_channels: int, capacity: int, dtype: DTypeLike = np.float32) -> None:
        if n_channels < 1:
            raise ValueError(f"RingBuffer needs n_channels >= 1, got {n_channels}.")
        if capacity < 1:
            raise ValueError(f"RingBuffer needs capacity >= 1 sample, got {capacity}.")
        self.n_channels = int(n_channels)
        self.capacity = int(capacity)
        self._data = np.zeros((self.capacity, self.n_channels), dtype=dtype)
        self._times = np.zeros(self.capacity, dtype=np.float64)
        self._n_written = 0
        self._claimed = 0

    @property
    def n_written(self) -> int:
        """Total number of samples ever written (monotonic; never wraps)."""
        return self._n_written

    def write(self, samples: np.ndarray, timestamps: np.ndarray) -> None:
        """Append ``samples`` (n, n_channels) with their ``timestamps`` (n,)."""
        samples = np.asarray(samples)
        timestamps = np.asarray(timestamps, dtype=np.float64)
        if samples.ndim != 2 or samples.shape[1] != self.n_channels:
            raise ValueError(
                f"RingBuffer.write expects samples of shape (n, {self.n_channels}), "
                f"got {samples.shape}."
            )
        if timestamps.shape != (samples.shape[0],):
            raise ValueError(
                f"RingBuffer.write expects one timestamp per sample: {samples.shape[0]} "
                f"samples but timestamps of shape {timestamps.shape}."
            )
        n = samples.shape[0]
        if n == 0:
            return
        end = self._n_written + n
        self._claimed = end
        if n > self.capacity:
            # Only the newest `capacity` samples can survive; the older ones are counted.
            samples, timestamps = samples[n - self.capacity :], timestamps[n - self.capacity :]
            n = self.capacity
        start = (end - n) % self.capacity
        first = min(n, self.capacity - start)
        self._data[start : start + first] = samples[:first]
        self._times[start : start + first] = timestamps[:first]
        if first < n:
            self._data[: n - first] = samples[first:]
            self._times[: n - first] = timestamps[first:]
        self._n_written = end

    def read(self, start_count: int, stop_count: int) -> tuple[np.ndarray, np.ndarray]:
        """Copy samples with counts in ``[start_count, stop_count)`` and their timestamps."""
        if not 0 <= start_count <= stop_count <= self._n_written:
            raise ValueError(
                f"RingBuffer.read range [{start_count}, {stop_count}) is invalid: it must "
                f"satisfy 0 <= start <= stop <= n_written ({self._n_written})."
            )
        n = stop_count - start_count
        if n > self.capacity:
            raise BufferOverrunError(
                f"Cannot read {n} samples from a ring buffer of capacity {self.capacity}; "
                "read in smaller pieces or enlarge the buffer."
            )
        start = start_count % self.capacity
        idx = (start + np.arange(n)) % self.capacity
        data = self._data[idx]
        times = self._times[idx]
        # Re-check after copying: if the writer lapped `start_count` meanwhile, data is mixed.
        if self._claimed - start_count > self.capacity:
            raise BufferOverrunError(
                f"Samples from count {start_count} were overwritten (writer is at "
                f"{self._claimed}, capacity {self.capacity}); the reader fell behind. "
                "Enlarge the buffer or read more often."
            )
        return data, times

    def latest(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        """Copy the newest ``n`` samples (fewer if fewer were written) and their timestamps."""
        stop = self._n_written
        start = max(0, stop - min(n, self.capacity))
        return self.read(start, stop)
