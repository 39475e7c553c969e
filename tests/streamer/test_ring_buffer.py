"""Ring buffer: wraparound, oversized chunks, overrun detection, a concurrent reader."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from neurorvq_stream.streamer._ring_buffer import BufferOverrunError, RingBuffer


def _samples(start: int, n: int, n_channels: int = 3) -> tuple[np.ndarray, np.ndarray]:
    counts = np.arange(start, start + n)
    data = counts[:, None] * 10.0 + np.arange(n_channels)[None, :]
    return data, counts * 0.004


def test_wraparound_reads_back_what_was_written() -> None:
    buf = RingBuffer(3, capacity=100)
    written = 0
    for n in (30, 45, 50, 1, 0, 70):
        buf.write(*_samples(written, n))
        written += n
    assert buf.n_written == written == 196
    data, times, segments, flags = buf.read(120, 196)
    expected, expected_times = _samples(120, 76)
    np.testing.assert_array_equal(data, expected.astype(np.float32))
    np.testing.assert_array_equal(times, expected_times)
    assert not segments.any() and not flags.any()


def test_chunk_larger_than_capacity_keeps_the_newest() -> None:
    buf = RingBuffer(3, capacity=64)
    buf.write(*_samples(0, 10))
    buf.write(*_samples(10, 200))
    assert buf.n_written == 210
    data, times, _, _ = buf.read(146, 210)
    np.testing.assert_array_equal(data[:, 0], np.arange(146, 210) * 10.0)
    np.testing.assert_allclose(times, np.arange(146, 210) * 0.004)
    with pytest.raises(BufferOverrunError, match="overwritten"):
        buf.read(145, 150)


def test_gaps_and_stream_flags_travel_with_the_samples() -> None:
    buf = RingBuffer(3, capacity=60)
    buf.write(*_samples(0, 10))
    buf.write(*_samples(10, 10), breaks=np.array([0, 4]), flags=8)  # gaps before 10 and 14
    buf.write(*_samples(20, 40))
    buf.write(*_samples(60, 5))  # wraps around
    _, _, segments, flags = buf.read(5, 60)
    expected = np.repeat([0, 1, 2], [5, 4, 46])
    np.testing.assert_array_equal(segments, expected)
    np.testing.assert_array_equal(flags, np.repeat([0, 8, 0], [5, 10, 40]))


def test_invalid_requests_are_explained() -> None:
    buf = RingBuffer(2, capacity=8)
    buf.write(np.zeros((5, 2)), np.arange(5.0))
    with pytest.raises(ValueError, match=r"n_written \(5\)"):
        buf.read(0, 6)
    with pytest.raises(ValueError, match=r"shape \(n, 2\)"):
        buf.write(np.zeros((5, 3)), np.arange(5.0))
    with pytest.raises(ValueError, match="one time per sample"):
        buf.write(np.zeros((5, 2)), np.arange(4.0))


def test_reader_thread_sees_complete_consistent_samples() -> None:
    buf = RingBuffer(4, capacity=512)
    total = 50_000
    errors: list[str] = []
    done = threading.Event()

    def reader() -> None:
        position = 0
        while position < total:
            stop = buf.n_written
            if stop == position:
                if done.is_set() and buf.n_written == position:
                    break
                continue
            try:
                data, times, _, _ = buf.read(position, stop)
            except BufferOverrunError:
                position = buf.n_written  # fell behind: skip ahead, as the runner would
                continue
            counts = np.round(times / 0.004).astype(int)
            if not np.array_equal(counts, np.arange(position, stop)):
                errors.append(f"times out of order at {position}")
            if not np.array_equal(data[:, 0], counts * 10.0):
                errors.append(f"data and times disagree at {position}")
            position = stop

    thread = threading.Thread(target=reader)
    thread.start()
    written = 0
    rng = np.random.default_rng(0)
    while written < total:
        n = min(int(rng.integers(1, 40)), total - written)
        buf.write(*_samples(written, n, n_channels=4))
        written += n
    done.set()
    thread.join(timeout=30)
    assert not thread.is_alive()
    assert errors == []
