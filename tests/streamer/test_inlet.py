"""Gap, stall and restart handling of EEGInlet over real loopback outlets."""

import time
import uuid

import numpy as np
import pylsl
import pytest

from neurorvq_stream.streamer._inlet import Acquisition, EEGInlet, MarkerInlet, resolve_one
from neurorvq_stream.streamer._ring_buffer import RingBuffer

RATE = 500.0


def _outlet(name: str, source_id: str, n_ch: int = 4) -> pylsl.StreamOutlet:
    info = pylsl.StreamInfo(name, "EEG", n_ch, RATE, "float32", source_id)
    return pylsl.StreamOutlet(info)


def _drain(inlet: EEGInlet, seconds: float) -> tuple[np.ndarray, np.ndarray, list[int]]:
    """Samples, timestamps and the (overall) indices of samples that follow a gap."""
    chunks, stamps, gaps = [], [], []
    end = time.monotonic() + seconds
    n = 0
    while time.monotonic() < end:
        data, ts, breaks = inlet.pull(0.005)
        chunks.append(data)
        stamps.append(ts)
        gaps += (n + breaks).tolist()
        n += len(ts)
    return np.concatenate(chunks), np.concatenate(stamps), gaps


@pytest.fixture
def stream():
    name = f"inlet-{uuid.uuid4().hex[:8]}"
    outlet = _outlet(name, name)
    inlet = EEGInlet(name=name, resolve_timeout=3.0, stall_timeout=0.3)
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
    data, ts, gaps = _drain(inlet, 0.5)
    assert data.shape == (200, 4)
    np.testing.assert_array_equal(data[:100], first)
    np.testing.assert_allclose(ts[:100], t0 + np.arange(100) / RATE, atol=1e-6)
    c = inlet.counters
    assert (c.gaps, c.samples_lost, c.samples_received) == (1, 37, 200)
    assert gaps == [100]


def test_stall_is_reported_and_cleared_when_data_returns(stream):
    _, outlet, inlet = stream
    outlet.push_chunk(np.zeros((10, 4), np.float32))
    _drain(inlet, 0.1)
    assert inlet.counters.state == "streaming"
    _drain(inlet, 0.5)
    assert (inlet.counters.state, inlet.counters.stalls) == ("stalled", 1)
    outlet.push_chunk(np.zeros((10, 4), np.float32))
    data, _, _ = _drain(inlet, 0.1)
    assert len(data) == 10
    assert (inlet.counters.state, inlet.counters.stalls) == ("streaming", 1)


def test_inlet_recovers_after_the_outlet_restarts_with_the_same_source_id():
    name = f"restart-{uuid.uuid4().hex[:8]}"
    outlet = _outlet(name, name)
    inlet = EEGInlet(name=name, resolve_timeout=3.0, stall_timeout=0.3)
    inlet.open()
    outlet.push_chunk(np.ones((20, 4), np.float32))
    assert len(_drain(inlet, 0.1)[0]) == 20
    del outlet  # the amplifier app quits ...
    _drain(inlet, 0.5)
    assert inlet.counters.state == "stalled"
    restarted = _outlet(name, name)  # ... and comes back
    received = 0
    end = time.monotonic() + 5.0
    while received == 0 and time.monotonic() < end:
        restarted.push_chunk(np.full((5, 4), 2.0, np.float32))
        received += len(_drain(inlet, 0.05)[0])
    assert received > 0
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
    end = time.monotonic() + 3.0
    while ring.n_written < 250 and time.monotonic() < end:
        time.sleep(0.01)
    acq.stop()
    data, _, _, _ = ring.read(0, ring.n_written)
    np.testing.assert_array_equal(data, chunk)
    assert acq.error is None and acq.cpu_seconds >= 0


def test_markers_come_with_their_timestamps():
    name = f"mk-{uuid.uuid4().hex[:8]}"
    info = pylsl.StreamInfo(name, "Markers", 1, pylsl.IRREGULAR_RATE, "string", name)
    outlet = pylsl.StreamOutlet(info)
    markers = MarkerInlet(name=name, resolve_timeout=3.0)
    markers.open()
    t = pylsl.local_clock()
    outlet.push_sample(["face-upright"], t)
    outlet.push_sample(["press-left"], t + 0.1)
    got = []
    end = time.monotonic() + 2.0
    while len(got) < 2 and time.monotonic() < end:
        got += markers.pull()
        time.sleep(0.01)
    assert [m for _, m in got] == ["face-upright", "press-left"]
    np.testing.assert_allclose([s for s, _ in got], [t, t + 0.1], atol=1e-6)


def test_no_stream_error_lists_what_is_there():
    with pytest.raises(LookupError, match="No LSL stream matches name='nothing-"):
        resolve_one(f"nothing-{uuid.uuid4().hex}", None, None, None, timeout=0.2)
