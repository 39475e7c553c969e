"""Fixed-memory ring buffer of samples, their LSL timestamps and segments, at the source rate.

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

Segments and flags: the writer says where a gap interrupted the stream (``breaks``) and
what it knows about a chunk as a whole (``flags``: ``ChannelFlag`` bits such as a rate
mismatch); each sample carries the number of its gap-free segment and those flags, so a
reader learns them from the data it reads, however it slices the counts, and nobody has
to detect them a second time.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import DTypeLike

from ._checks import samples_and_times


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
        self._segments = np.zeros(self.capacity, dtype=np.int64)
        self._flags = np.zeros(self.capacity, dtype=np.uint8)
        self._segment = 0
        self._n_written = 0
        self._claimed = 0

    @property
    def n_written(self) -> int:
        """Total number of samples ever written (monotonic; never wraps)."""
        return self._n_written

    def write(
        self,
        samples: np.ndarray,
        timestamps: np.ndarray,
        breaks: np.ndarray | None = None,
        flags: int = 0,
    ) -> None:
        """Append ``samples`` (n, n_channels) with their ``timestamps`` (n,).

        ``breaks`` are indices into this chunk of samples that follow a gap (0 for a gap
        before the chunk); each starts a new segment. ``flags`` apply to every sample.
        """
        samples, timestamps = samples_and_times(samples, timestamps, self.n_channels,
                                                "RingBuffer.write")
        n = samples.shape[0]
        if n == 0:
            return
        starts = np.zeros(n, dtype=np.int64)
        if breaks is not None and len(breaks):
            np.add.at(starts, np.asarray(breaks, dtype=np.int64), 1)
        segments = self._segment + np.cumsum(starts)
        self._segment = int(segments[-1])
        end = self._n_written + n
        self._claimed = end
        if n > self.capacity:
            # Only the newest `capacity` samples can survive; the older ones are counted.
            keep = slice(n - self.capacity, n)
            samples, timestamps, segments = samples[keep], timestamps[keep], segments[keep]
            n = self.capacity
        start = (end - n) % self.capacity
        first = min(n, self.capacity - start)
        self._data[start : start + first] = samples[:first]
        self._times[start : start + first] = timestamps[:first]
        self._segments[start : start + first] = segments[:first]
        self._flags[start : start + first] = flags
        if first < n:
            self._flags[: n - first] = flags
            self._data[: n - first] = samples[first:]
            self._times[: n - first] = timestamps[first:]
            self._segments[: n - first] = segments[first:]
        self._n_written = end

    def read(
        self, start_count: int, stop_count: int
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Copies of the samples with counts in ``[start_count, stop_count)``, their
        timestamps, segment numbers and flags."""
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
        segments = self._segments[idx]
        flags = self._flags[idx]
        # Re-check after copying: if the writer lapped `start_count` meanwhile, data is mixed.
        if self._claimed - start_count > self.capacity:
            raise BufferOverrunError(
                f"Samples from count {start_count} were overwritten (writer is at "
                f"{self._claimed}, capacity {self.capacity}); the reader fell behind. "
                "Enlarge the buffer or read more often."
            )
        return data, times, segments, flags
