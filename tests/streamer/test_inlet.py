"""Gap, stall and restart handling of EEGInlet over real loopback outlets."""

import time
import uuid

import numpy as np
import pylsl
import pytest
from helpers import CLOCK_SYNC_S, EVENTUALLY_S, wait_until

from neurorvq_stream.streamer._inlet import (
    Acquisition,
    EEGInlet,
    MarkerInlet,
    SampleTimeline,
    resolve_one,
)
from neurorvq_stream.streamer._ring_buffer import RingBuffer

RATE = 500.0
# Long enough that a busy machine delaying one delivery does not look like a stall.
STALL_S = 1.0


def _outlet(name: str, source_id: str, n_ch: int = 4) -> pylsl.StreamOutlet:
    info = pylsl.StreamInfo(name, "EEG", n_ch, RATE, "float32", source_id)
    return pylsl.StreamOutlet(info)


def _drain(inlet: EEGInlet, seconds: float) -> tuple[np.ndarray, np.ndarray]:
    """Everything that arrives within ``seconds`` (for when nothing more should come)."""
    chunks, stamps = [np.empty((0, inlet.n_channels), np.float32)], [np.empty(0)]
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        data, ts, _ = inlet.pull(0.005)
        chunks.append(data)
        stamps.append(ts)
    return np.concatenate(chunks), np.concatenate(stamps)


def _receive(inlet: EEGInlet, n: int) -> tuple[np.ndarray, np.ndarray, list[int]]:
    """Pull until ``n`` samples have arrived (failing after a generous deadline); also the
    overall indices of the samples that follow a gap."""
    chunks, stamps, gaps = [], [], []

    def arrived() -> bool:
        received = sum(map(len, stamps))
        data, ts, breaks = inlet.pull(0.005)
        chunks.append(data)
        stamps.append(ts)
        gaps.extend((received + breaks).tolist())
        return received + len(ts) >= n

    wait_until(arrived, f"{n} samples")
    return np.concatenate(chunks), np.concatenate(stamps), gaps


def _pull_until_state(inlet: EEGInlet, state: str) -> None:
    def reached() -> bool:
        inlet.pull(0.005)  # whoever pulls also detects stalls
        return inlet.counters.state == state

    wait_until(reached, f"the inlet to be {state}")


@pytest.fixture
def stream():
    name = f"inlet-{uuid.uuid4().hex[:8]}"
    outlet = _outlet(name, name)
    inlet = EEGInlet(name=name, resolve_timeout=EVENTUALLY_S, stall_timeout=STALL_S)
    inlet.open()
    yield name, outlet, inlet
    inlet.close()


def test_samples_arrive_in_the_source_clock_and_a_gap_is_counted(stream):
    _, outlet, inlet = stream
    t0 = pylsl.local_clock()
    first = np.arange(100 * 4, dtype=np.float32).reshape(100, 4)
    outlet.push_chunk(first, (t0 + np.arange(100) / RATE).tolist())
    # 37 samples never sent: the next chunk starts 37 periods later than it should.
    outlet.push_chunk(first, (t0 + (137 + np.arange(100)) / RATE).tolist())
    data, ts, gaps = _receive(inlet, 200)
    assert data.shape == (200, 4)
    np.testing.assert_array_equal(data[:100], first)
    # Stamps are mapped into this machine's clock by liblsl's offset estimate.
    np.testing.assert_allclose(ts[:100], t0 + np.arange(100) / RATE, atol=CLOCK_SYNC_S, rtol=0)
    np.testing.assert_allclose(ts[100:], t0 + (137 + np.arange(100)) / RATE, atol=CLOCK_SYNC_S,
                               rtol=0)
    c = inlet.counters
    assert (c.gaps, c.samples_lost, c.samples_received) == (1, 37, 200)
    assert gaps == [100]


def _push_jittered(outlet: pylsl.StreamOutlet, rate: float, seconds: float, seed: int,
                   hole: tuple[float, int] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Push ``seconds`` of samples in chunks of 10-80, each chunk's stamps late by a delay
    drawn from 0-10 ms (a vendor app stamping chunks on arrival); ``hole=(at_s, n)`` leaves
    ``n`` samples out at ``at_s``. Returns the sent samples' true times and stamps."""
    rng = np.random.default_rng(seed)
    n_ch = outlet.get_info().channel_count()
    index = np.arange(round(seconds * rate))
    if hole is not None:
        at = round(hole[0] * rate)
        index = np.concatenate((index[:at], index[at + hole[1]:]))
    true = pylsl.local_clock() + index / rate
    sent = np.empty_like(true)
    pos = 0
    while pos < len(index):
        take = slice(pos, min(len(index), pos + int(rng.integers(10, 81))))
        sent[take] = true[take] + rng.uniform(0.0, 0.010)
        outlet.push_chunk(rng.standard_normal((len(sent[take]), n_ch)).astype(np.float32),
                          sent[take].tolist())
        pos = take.stop
    return true, sent


@pytest.mark.parametrize(("rate", "n_ch"), [(1000.0, 19), (2048.0, 128)])
def test_chunks_stamped_on_arrival_are_not_a_loss(rate, n_ch):
    name = f"jitter-{uuid.uuid4().hex[:8]}"
    outlet = pylsl.StreamOutlet(pylsl.StreamInfo(name, "EEG", n_ch, rate, "float32", name))
    inlet = EEGInlet(name=name, resolve_timeout=EVENTUALLY_S)
    inlet.open()
    true, sent = _push_jittered(outlet, rate, 4.0, seed=int(rate))
    _, ts, gaps = _receive(inlet, len(sent))
    inlet.close()
    c = inlet.counters
    assert (c.samples_received, c.samples_lost, c.gaps, gaps) == (len(sent), 0, 0, [])
    assert np.max(np.diff(sent)) > 5e-3  # jittered by more than the old rule's 4 samples
    # Handed on at their place on the timeline: never later than stamped, nor earlier than
    # sampled (delays are never negative).
    assert np.all(ts <= sent + CLOCK_SYNC_S) and np.all(ts >= true - CLOCK_SYNC_S)


@pytest.mark.parametrize(("rate", "n_ch", "missing"), [(1000.0, 19, 250), (2048.0, 128, 500)])
def test_a_real_hole_among_jittered_chunks_is_counted_with_its_size(rate, n_ch, missing):
    name = f"hole-{uuid.uuid4().hex[:8]}"
    outlet = pylsl.StreamOutlet(pylsl.StreamInfo(name, "EEG", n_ch, rate, "float32", name))
    inlet = EEGInlet(name=name, resolve_timeout=EVENTUALLY_S)
    inlet.open()
    _, sent = _push_jittered(outlet, rate, 4.0, seed=int(rate) + 1, hole=(2.0, missing))
    _, _, gaps = _receive(inlet, len(sent))
    inlet.close()
    c = inlet.counters
    assert c.gaps == 1 and gaps == [round(2.0 * rate)]
    # Known to within the arrival delay of the chunk after the hole (0-10 ms).
    assert missing <= c.samples_lost <= missing + 0.010 * rate


@pytest.mark.parametrize("ppm", [-300.0, 300.0])
def test_clock_drift_under_jitter_is_followed_not_counted(ppm):
    """10 minutes of a 1 kHz amplifier whose clock runs 300 ppm off this one (0.18 s over
    the run), chunks stamped 0-10 ms late: no gap; a 100-sample hole is still found."""
    rng = np.random.default_rng(7)
    timeline = SampleTimeline(1000.0, 0.02)
    n, hole_at = 600_000, 400_000
    index = np.concatenate((np.arange(hole_at), np.arange(hole_at + 100, n)))
    true = index / (1000.0 * (1 + ppm * 1e-6))
    breaks, lost, pos = [], [], 0
    while pos < len(index):
        size = int(rng.integers(10, 81))
        b, m, _ = timeline.place(true[pos:pos + size] + rng.uniform(0.0, 0.010))
        breaks += (pos + b).tolist()
        lost += m.tolist()
        pos += size
    assert breaks == [hole_at] and 100 <= lost[0] <= 110


def test_a_chunk_held_back_within_max_jitter_keeps_its_place_on_the_timeline():
    """A source known to deliver up to 0.5 s late (``max_jitter``): one chunk stamped 0.3 s
    late, every sample there. No gap, and its samples are handed on at their true times."""
    name = f"held-{uuid.uuid4().hex[:8]}"
    outlet = _outlet(name, name)
    inlet = EEGInlet(name=name, resolve_timeout=EVENTUALLY_S, max_jitter=0.5)
    inlet.open()
    true = pylsl.local_clock() + np.arange(1000) / RATE
    for k in range(0, 1000, 25):
        late = 0.3 if k == 500 else 0.0
        outlet.push_chunk(np.zeros((25, 4), np.float32), (true[k:k + 25] + late).tolist())
    _, ts, gaps = _receive(inlet, 1000)
    inlet.close()
    assert (inlet.counters.gaps, inlet.counters.samples_lost, gaps) == (0, 0, [])
    np.testing.assert_allclose(ts, true, atol=CLOCK_SYNC_S, rtol=0)


def test_a_clock_reset_breaks_the_stream_and_loses_no_sample(stream):
    _, outlet, inlet = stream
    t0 = pylsl.local_clock()
    outlet.push_chunk(np.zeros((100, 4), np.float32), (t0 + np.arange(100) / RATE).tolist())
    # The source's clock starts again 5 s earlier.
    outlet.push_chunk(np.zeros((100, 4), np.float32), (t0 - 5 + np.arange(100) / RATE).tolist())
    _, ts, gaps = _receive(inlet, 200)
    c = inlet.counters
    assert (c.gaps, c.samples_lost, gaps) == (1, 0, [100])
    np.testing.assert_allclose(ts[100:], t0 - 5 + np.arange(100) / RATE, atol=CLOCK_SYNC_S,
                               rtol=0)


def test_a_late_chunk_and_its_back_dated_backlog_are_one_gap():
    """A chunk stamped 0.3 s late (beyond the 20 ms tolerance: a gap with 300 samples, as
    far as the timeline can tell), then the backlog, each chunk back-dated onto the one
    before (stamped 40 ms earlier than its place) until punctual: one gap, no clock reset."""
    timeline = SampleTimeline(1000.0, 0.02)
    delays = [0.0] * 50 + [0.3 - 0.04 * k for k in range(8)] + [0.0] * 50
    placed = [timeline.place(np.arange(40 * k, 40 * k + 40) / 1000.0 + delay)
              for k, delay in enumerate(delays)]
    gaps = [(k, p.lost.tolist()) for k, p in enumerate(placed) if len(p.breaks)]
    assert gaps == [(50, [300])]
    # A clock reset beyond what that gap counted still breaks.
    reset = timeline.place(np.arange(40) / 1000.0)
    assert (reset.breaks.tolist(), reset.lost.tolist()) == ([0], [0])


def test_a_source_that_has_not_sent_yet_is_starting_not_stalled(stream):
    _, outlet, inlet = stream
    deadline = time.monotonic() + 2 * STALL_S
    while time.monotonic() < deadline:  # connected, no sample for longer than a stall
        inlet.pull(0.005)
    assert (inlet.counters.state, inlet.counters.stalls) == ("starting", 0)
    outlet.push_chunk(np.zeros((10, 4), np.float32))
    _receive(inlet, 10)
    assert (inlet.counters.state, inlet.counters.stalls) == ("streaming", 0)


def test_stall_is_reported_and_cleared_when_data_returns(stream):
    _, outlet, inlet = stream
    outlet.push_chunk(np.zeros((10, 4), np.float32))
    _receive(inlet, 10)
    assert (inlet.counters.state, inlet.counters.stalls) == ("streaming", 0)
    _pull_until_state(inlet, "stalled")  # no sample for STALL_S
    assert inlet.counters.stalls == 1
    outlet.push_chunk(np.zeros((10, 4), np.float32))
    data, _, _ = _receive(inlet, 10)
    assert len(data) == 10
    assert (inlet.counters.state, inlet.counters.stalls) == ("streaming", 1)


def test_inlet_recovers_after_the_outlet_restarts_with_the_same_source_id():
    name = f"restart-{uuid.uuid4().hex[:8]}"
    outlet = _outlet(name, name)
    inlet = EEGInlet(name=name, resolve_timeout=EVENTUALLY_S, stall_timeout=STALL_S)
    inlet.open()
    outlet.push_chunk(np.ones((20, 4), np.float32))
    assert len(_receive(inlet, 20)[0]) == 20
    del outlet  # the amplifier app quits ...
    _pull_until_state(inlet, "stalled")
    restarted = _outlet(name, name)  # ... and comes back

    def resumed() -> bool:
        restarted.push_chunk(np.full((5, 4), 2.0, np.float32))
        return len(_drain(inlet, 0.05)[0]) > 0

    wait_until(resumed, "data from the restarted outlet")
    assert inlet.counters.state == "streaming"
    assert inlet.counters.stalls == 1
    inlet.close()


def test_acquisition_thread_fills_the_ring_buffer(stream):
    _, outlet, inlet = stream
    ring = RingBuffer(4, 1000)
    acq = Acquisition(inlet, ring.write)
    acq.start()
    chunk = np.random.default_rng(0).standard_normal((250, 4)).astype(np.float32)
    outlet.push_chunk(chunk)
    wait_until(lambda: ring.n_written >= 250, "250 samples in the ring buffer")
    acq.stop()
    data, _, _, _ = ring.read(0, ring.n_written)
    np.testing.assert_array_equal(data, chunk)
    assert acq.error is None
    # Its own CPU time is measured (the benchmarks report it): some, and never more than
    # the wall time of a single thread.
    assert 0 < acq.cpu_seconds <= acq.wall_seconds


def test_markers_come_with_their_timestamps():
    name = f"mk-{uuid.uuid4().hex[:8]}"
    info = pylsl.StreamInfo(name, "Markers", 1, pylsl.IRREGULAR_RATE, "string", name)
    outlet = pylsl.StreamOutlet(info)
    markers = MarkerInlet(name=name, resolve_timeout=EVENTUALLY_S)
    markers.open()
    t = pylsl.local_clock()
    outlet.push_sample(["face-upright"], t)
    outlet.push_sample(["press-left"], t + 0.1)
    got = []

    def both() -> bool:
        got.extend(markers.pull())
        return len(got) >= 2

    wait_until(both, "two markers")
    assert [m for _, m in got] == ["face-upright", "press-left"]
    np.testing.assert_allclose([s for s, _ in got], [t, t + 0.1], atol=CLOCK_SYNC_S, rtol=0)


def test_no_stream_error_lists_what_is_there():
    with pytest.raises(LookupError, match="No LSL stream matches name='nothing-"):
        resolve_one(f"nothing-{uuid.uuid4().hex}", None, None, None, timeout=0.2)
