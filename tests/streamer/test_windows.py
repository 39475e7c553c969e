"""Window scheduling: chunking independence, gaps, marker-locked windows."""

from __future__ import annotations

import importlib.util
import uuid
from pathlib import Path

import mne
import numpy as np
import pytest
from helpers import EVENTUALLY_S

from neurorvq_stream.streamer._preprocessing import Preprocessor
from neurorvq_stream.streamer._ring_buffer import RingBuffer
from neurorvq_stream.streamer._windows import MarkerLockedWindows, SlidingWindows


def _signal(n: int, t0: float = 10.0) -> tuple[np.ndarray, np.ndarray]:
    counts = np.arange(n)
    data = np.column_stack([counts, -counts]).astype(np.float32)
    return data, t0 + counts / 200.0


def _feed(scheduler, data, times, sizes) -> list:
    windows, i = [], 0
    for n in sizes:
        windows.extend(scheduler.feed(data[i : i + n], times[i : i + n]))
        i += n
    return windows


def test_sliding_windows_identical_whatever_the_chunks() -> None:
    data, times = _signal(3000)
    one = SlidingWindows(n_patches=4, hop_s=0.5).feed(data, times)
    rng = np.random.default_rng(0)
    sizes = rng.integers(0, 230, size=200)
    sizes = np.append(sizes, 3000)  # whatever is left
    chunked = _feed(SlidingWindows(n_patches=4, hop_s=0.5), data, times, sizes)
    assert len(one) == len(chunked) == (3000 - 800) // 100 + 1
    for a, b in zip(one, chunked, strict=True):
        assert a.index == b.index and a.t_last == b.t_last and not a.gap
        np.testing.assert_array_equal(a.data, b.data)
    # Newest 800 samples, channel-major, ending every 100 samples.
    assert one[0].data.shape == (2, 800)
    np.testing.assert_array_equal(one[3].data[0], np.arange(300, 1100))
    assert one[3].t_last == times[1099]


def test_gap_restarts_accumulation_and_is_reported() -> None:
    data, times = _signal(2000)
    scheduler = SlidingWindows(n_patches=2, hop_s=0.5)
    windows = _feed(scheduler, data[:1000], times[:1000], [333] * 4)
    scheduler.mark_gap()  # where the inlet found one
    windows += _feed(scheduler, data[1000:], times[1000:] + 3.0, [333] * 4)
    assert [w.index for w in windows] == list(range(len(windows)))
    for w in windows:
        assert np.all(np.diff(w.data[0]) == 1), "a window mixed data across the gap"
    after = [w for w in windows if w.data[0][0] >= 1000]
    assert after[0].gap and after[0].data[0][0] == 1000
    assert not any(w.gap for w in windows if w is not after[0])


def test_times_that_jump_are_not_a_gap_of_their_own() -> None:
    """Gaps are the inlet's: a stretch of late times it judged complete (forward, then
    back) breaks nothing here, so every window is cut."""
    data, times = _signal(2000)
    late = times.copy()
    late[900:960] += 0.3
    windows = _feed(SlidingWindows(n_patches=2, hop_s=0.5), data, late, [40] * 50)
    assert [w.data[0][-1] for w in windows] == list(range(399, 2000, 100))
    assert not any(w.gap for w in windows)


def test_marker_locked_window_contains_the_marked_sample() -> None:
    data, times = _signal(3000)
    data[1234, :] = 9999.0  # the event
    locked = MarkerLockedWindows(offset_s=-0.2, length_patches=1)
    windows = []
    windows += locked.add_marker(times[1234], "face")  # marker arrives before its data
    windows += _feed(locked, data[:1500], times[:1500], [97] * 16)
    windows += locked.add_marker(times[300], "house")  # marker arrives late, data still kept
    assert [w.label for w in windows] == ["face", "house"]
    face = windows[0]
    assert face.data.shape == (2, 200)
    assert np.argmax(face.data[0]) == 40  # 0.2 s after the window start
    assert face.marker_time == times[1234]
    assert face.t_last == times[1234 - 40 + 199]
    np.testing.assert_array_equal(windows[1].data[1], -np.arange(260, 460))


def test_marker_before_a_gap_or_too_old_is_dropped() -> None:
    data, times = _signal(2000)
    locked = MarkerLockedWindows(offset_s=0.0, length_patches=1, history_s=3.0)
    locked.add_marker(times[950], "spans-gap")
    windows = _feed(locked, data[:1000], times[:1000], [100] * 10)
    locked.mark_gap()
    windows += _feed(locked, data[1000:], times[1000:] + 5.0, [100] * 10)
    assert windows == [] and locked.n_skipped == 1
    windows = locked.add_marker(times[10], "too-old")
    assert windows == [] and locked.n_skipped == 2


def test_invalid_input_is_explained() -> None:
    with pytest.raises(ValueError, match="times of shape"):
        SlidingWindows().feed(np.zeros((5, 2)), np.zeros(4))
    with pytest.raises(ValueError, match="shorter than one sample"):
        SlidingWindows(hop_s=0.001)


def test_windows_over_real_lsl_match_offline_processing() -> None:
    """Real EEG through a loopback pylsl outlet/inlet, ring buffer, preprocessing, windows."""
    import pylsl

    spec = importlib.util.find_spec("pylossless")
    assert spec is not None and spec.origin is not None, "pylossless (test data) is missing"
    edf = Path(spec.origin).parent / "assets/test_data/sub-s01/eeg/sub-s01_task-faceO_eeg.edf"
    raw = mne.io.read_raw_edf(edf, preload=False, verbose="error")
    rate = raw.info["sfreq"]
    eeg = raw.get_data(picks=list(range(0, 128, 16)), stop=int(12 * rate)).T * 1e6
    stamps = 1000.0 + np.arange(eeg.shape[0]) / rate

    name = f"windows-{uuid.uuid4().hex[:8]}"  # unique: other test runs share this machine
    info = pylsl.StreamInfo(name, "EEG", 8, rate, "float32", name)
    outlet = pylsl.StreamOutlet(info, chunk_size=0, max_buffered=60)
    found = pylsl.resolve_byprop("source_id", name, timeout=EVENTUALLY_S)
    assert found, "the loopback outlet was not found"
    inlet = pylsl.StreamInlet(found[0], max_buflen=60)
    inlet.open_stream(timeout=EVENTUALLY_S)
    assert outlet.wait_for_consumers(EVENTUALLY_S), "the inlet did not connect"
    rng = np.random.default_rng(7)
    i = 0
    while i < eeg.shape[0]:
        n = int(rng.integers(1, 60))
        outlet.push_chunk(eeg[i : i + n].astype(np.float32), list(stamps[i : i + n]))
        i += n

    ring = RingBuffer(8, capacity=int(4 * rate))
    pre = Preprocessor(rate, 8)
    live = SlidingWindows(n_patches=2, hop_s=0.25)
    windows, read_from, n_pulls = [], 0, 0
    while read_from < eeg.shape[0] and n_pulls < 2000:
        n_pulls += 1
        chunk, times = inlet.pull_chunk(timeout=0.05, max_samples=int(rng.integers(1, 90)))
        if times:
            ring.write(np.asarray(chunk), np.asarray(times))
        stop = min(ring.n_written, read_from + int(rng.integers(0, 200)))
        if stop == read_from:
            continue
        data, times, _, _ = ring.read(read_from, stop)
        out = pre.process(data, times)
        windows += live.feed(out.data, out.times)
        read_from = stop
    inlet.close_stream()
    assert read_from == eeg.shape[0], "not every pushed sample came through LSL"

    offline_out = Preprocessor(rate, 8).process(eeg.astype(np.float32), stamps)
    offline = SlidingWindows(n_patches=2, hop_s=0.25).feed(offline_out.data, offline_out.times)
    assert len(windows) == len(offline) > 30
    for got, want in zip(windows, offline, strict=True):
        assert got.t_last == pytest.approx(want.t_last, abs=1e-9)
        np.testing.assert_allclose(got.data, want.data, atol=1e-4, rtol=0)
