"""The player replays a real BioSemi EDF segment with its events as markers."""

import time
import uuid

import mne
import numpy as np
import pytest

from neurorvq_stream.streamer import Player, bundled_recording, load_recording
from neurorvq_stream.streamer._inlet import EEGInlet, MarkerInlet

SPEED = 4.0


@pytest.fixture(scope="module")
def segment():
    return load_recording(bundled_recording(), montage="biosemi128", tmin=6.0, tmax=8.0)


def test_recording_keeps_file_units_positions_and_events(segment):
    raw = mne.io.read_raw(bundled_recording(), verbose="error").crop(6.0, 8.0)
    np.testing.assert_allclose(segment.data, raw.get_data().T * 1e6, rtol=1e-5, atol=1e-3)
    assert segment.sfreq == raw.info["sfreq"]
    assert segment.channels[0].label == raw.ch_names[0]
    assert {c.unit for c in segment.channels} == {"microvolts"}
    assert all(c.location is not None for c in segment.channels)
    expected = [(a["onset"] - raw.first_time, a["description"]) for a in raw.annotations
                if not a["description"].lower().startswith(("bad", "boundary"))]
    assert [e[1] for e in segment.events] == [e[1] for e in expected]
    np.testing.assert_allclose([e[0] for e in segment.events], [e[0] for e in expected])


def test_replay_sends_the_samples_and_markers_on_the_scaled_clock(segment):
    name = f"play-{uuid.uuid4().hex[:8]}"
    player = Player(segment, name=name, speed=SPEED)
    inlet = EEGInlet(name=name, resolve_timeout=3.0)
    markers = MarkerInlet(name=f"{name}-Markers", resolve_timeout=3.0)
    markers.open()
    inlet.open()
    player.start()
    chunks, stamps, got = [], [], []
    end = time.monotonic() + 5.0
    while sum(map(len, stamps)) < len(segment.data) and time.monotonic() < end:
        d, t, _ = inlet.pull(0.01)
        chunks.append(d)
        stamps.append(t)
        got += markers.pull()
    player.join(2.0)
    time.sleep(0.05)
    got += markers.pull()
    data, ts = np.concatenate(chunks), np.concatenate(stamps)
    np.testing.assert_array_equal(data, segment.data)
    np.testing.assert_allclose(ts - ts[0], np.arange(len(ts)) / (segment.sfreq * SPEED),
                               atol=1e-6)
    # The inlet's clock-offset estimate on one machine is ~0 but not exactly 0.
    assert abs(ts[0] - player.t0) < 1e-3
    assert [m for _, m in got] == [label for _, label in segment.events]
    np.testing.assert_allclose([t - ts[0] for t, _ in got],
                               [onset / SPEED for onset, _ in segment.events], atol=1e-4)
    assert inlet.counters.gaps == 0 and not player.is_alive()


def test_loop_continues_the_clock_without_a_gap(segment):
    name = f"loop-{uuid.uuid4().hex[:8]}"
    short = load_recording(bundled_recording(), tmin=6.0, tmax=6.5)
    player = Player(short, name=name, speed=SPEED, loop=True)
    inlet = EEGInlet(name=name, resolve_timeout=3.0)
    inlet.open()
    player.start()
    n = 0
    end = time.monotonic() + 5.0
    while n < 3 * len(short.data) and time.monotonic() < end:
        n += len(inlet.pull(0.01)[1])
    player.stop()
    assert n >= 3 * len(short.data)
    assert inlet.counters.gaps == 0


def test_bad_inputs_are_refused(tmp_path, segment):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_recording(tmp_path / "nothing.edf")
    with pytest.raises(ValueError, match="speed must be > 0"):
        Player(segment, name="x", speed=0)
