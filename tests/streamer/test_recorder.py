"""LabRecorder records what was sent: samples, timestamps, markers, pipeline outputs.

Everything runs on real loopback LSL streams; files are read back with pyxdf. Timestamps
are compared within what LSL's clock synchronisation promises on one machine (the clock
offsets LabRecorder measures there are tens of microseconds; 1 ms is the bound asserted).
"""

import os
import signal
import subprocess
import sys
import textwrap
import time
import uuid
from pathlib import Path

import numpy as np
import psutil
import pylsl
import pytest
import pyxdf
from helpers import CLOCK_SYNC_S, EVENTUALLY_S, PARITY_DIR

from neurorvq_stream.streamer import Pipeline
from neurorvq_stream.streamer._config import RunConfig
from neurorvq_stream.streamer._lsl import ChannelInfo, write_channels
from neurorvq_stream.streamer._player import Player, Recording
from neurorvq_stream.streamer._recorder import Recorder, StreamQuery

pytestmark = pytest.mark.slow  # live streams in real time

REPO = Path(__file__).resolve().parents[2]
RATE, N_CH = 250.0, 8
#: LabRecorder writes every 0.5 s; what was sent this long before a crash must be on disk.
WRITE_PERIODS_S = 1.0


def _known_data(k: np.ndarray) -> np.ndarray:
    """Distinct, exactly representable values: sample k, channel c holds k + c / 16."""
    return (k[:, None] + np.arange(N_CH)[None, :] / 16).astype(np.float32)


class _Source:
    """An EEG outlet and a string marker outlet that push known data on the LSL clock."""

    def __init__(self, tag: str) -> None:
        self.name = f"{tag}-{uuid.uuid4().hex[:8]}"
        info = pylsl.StreamInfo(self.name, "EEG", N_CH, RATE, "float32", f"{self.name}-eeg")
        write_channels(info, [ChannelInfo(f"ch{k}", "microvolts", "EEG") for k in range(N_CH)])
        self.eeg = pylsl.StreamOutlet(info, chunk_size=10)
        minfo = pylsl.StreamInfo(f"{self.name}-Markers", "Markers", 1, pylsl.IRREGULAR_RATE,
                                 "string", f"{self.name}-markers")
        self.markers = pylsl.StreamOutlet(minfo)
        self.sent = 0
        self.sent_markers: list[tuple[float, str]] = []
        self.t0 = pylsl.local_clock()

    @property
    def queries(self) -> list[StreamQuery]:
        return [StreamQuery(source_id=f"{self.name}-eeg"),
                StreamQuery(source_id=f"{self.name}-markers")]

    def stamp(self, k: np.ndarray | int) -> np.ndarray:
        return self.t0 + np.asarray(k) / RATE

    def push_for(self, seconds: float, marker_every: float | None = None) -> None:
        """Push in 40 ms chunks at the nominal rate; irregular markers when asked."""
        end = pylsl.local_clock() + seconds
        rng = np.random.default_rng(self.sent)
        while pylsl.local_clock() < end:
            k = np.arange(self.sent, self.sent + 10)
            self.eeg.push_chunk(_known_data(k), self.stamp(k).tolist())
            if marker_every and rng.random() < 10 / RATE / marker_every:
                # between two samples, and sometimes two markers at one instant
                t = float(self.stamp(k[3]) + 0.0013)
                for label in [f"m{len(self.sent_markers)}"] * (1 + int(rng.random() < 0.3)):
                    self.markers.push_sample([label], t)
                    self.sent_markers.append((t, label))
            self.sent += 10
            time.sleep(0.04)


def _stream(streams: list[dict], name: str) -> dict:
    (found,) = [s for s in streams if s["info"]["name"][0] == name]
    return found


def _check_prefix(stream: dict, source: _Source, at_least: int) -> int:
    """The recorded EEG is exactly what was sent, from the first sample, with its stamps."""
    data, stamps = stream["time_series"], stream["time_stamps"]
    n = len(stamps)
    assert at_least <= n <= source.sent
    np.testing.assert_array_equal(data, _known_data(np.arange(n)))
    np.testing.assert_allclose(stamps, source.stamp(np.arange(n)), rtol=0, atol=CLOCK_SYNC_S)
    return n


def test_round_trip_keeps_every_sample_timestamp_and_marker(tmp_path):
    source = _Source("rt")
    # A stream that matches the type but was not chosen must stay out of the file.
    other = pylsl.StreamOutlet(pylsl.StreamInfo(f"{source.name}-other", "EEG", 2, RATE))
    path = tmp_path / "round_trip.xdf"
    with Recorder(path, source.queries) as recorder:
        assert recorder.recording
        # Longer than LabRecorder's 5 s clock-offset period, so offsets are in the file.
        source.push_for(6.0, marker_every=0.4)
        other.push_sample([1.0, 2.0])
    assert not recorder.recording
    streams, _ = pyxdf.load_xdf(str(path), dejitter_timestamps=False)
    assert sorted(s["info"]["name"][0] for s in streams) == sorted(
        [source.name, f"{source.name}-Markers"])
    eeg = _stream(streams, source.name)
    assert _check_prefix(eeg, source, source.sent) == source.sent
    assert eeg["info"]["desc"][0]["channels"][0]["channel"][3]["label"] == ["ch3"]
    markers = _stream(streams, f"{source.name}-Markers")
    assert len(source.sent_markers) >= 5
    assert [v[0] for v in markers["time_series"]] == [m for _, m in source.sent_markers]
    np.testing.assert_allclose(markers["time_stamps"], [t for t, _ in source.sent_markers],
                               rtol=0, atol=CLOCK_SYNC_S)
    for stream in (eeg, markers):
        assert len(stream["clock_times"]) >= 1
        assert np.all(np.abs(stream["clock_values"]) < CLOCK_SYNC_S)
        assert int(stream["footer"]["info"]["sample_count"][0]) == len(stream["time_stamps"])


# Ctrl-C raises KeyboardInterrupt even where the test runs as a background job (whose
# children inherit SIGINT ignored, as a shell's ``&`` leaves it).
_RECORD_UNTIL_KILLED = textwrap.dedent("""
    import signal, sys, time
    from neurorvq_stream.streamer._recorder import Recorder, StreamQuery
    signal.signal(signal.SIGINT, signal.default_int_handler)
    path, *ids = sys.argv[1:]
    with Recorder(path, [StreamQuery(source_id=i) for i in ids]) as recorder:
        print("recording", recorder.pid, flush=True)
        while True:
            time.sleep(1)
""")


def _gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


@pytest.mark.parametrize("crash", ["sigkill-python", "sigkill-labrecorder", "ctrl-c"])
def test_interrupted_recording_reads_back_up_to_the_interruption(tmp_path, crash):
    source = _Source("crash")
    path = tmp_path / "crash.xdf"
    ids = [q.source_id for q in source.queries]
    # Its own session, like a terminal's foreground job: Ctrl-C reaches the whole group.
    recorder = subprocess.Popen(
        [sys.executable, "-c", _RECORD_UNTIL_KILLED, str(path), *ids], cwd=REPO,
        stdout=subprocess.PIPE, text=True, start_new_session=True, env=os.environ.copy(),
    )
    try:
        word, pid = recorder.stdout.readline().split()
        assert word == "recording"
        source.push_for(3.0, marker_every=0.5)
        interrupted_at = source.sent
        if crash == "sigkill-python":
            recorder.send_signal(signal.SIGKILL)
        elif crash == "sigkill-labrecorder":
            os.kill(int(pid), signal.SIGKILL)
        else:
            os.killpg(recorder.pid, signal.SIGINT)
        source.push_for(1.0)  # the source goes on after the crash
        # The recorder gives LabRecorder 1 s to settle and 15 s to close before killing it.
        end = time.monotonic() + EVENTUALLY_S
        while not _gone(int(pid)) and time.monotonic() < end:
            time.sleep(0.1)
        assert _gone(int(pid))
    finally:
        recorder.kill()
        recorder.wait()
    streams, _ = pyxdf.load_xdf(str(path), dejitter_timestamps=False)
    eeg = _stream(streams, source.name)
    if crash == "sigkill-labrecorder":
        # Killed outright: the file holds what LabRecorder wrote, without footers.
        _check_prefix(eeg, source, interrupted_at - int(WRITE_PERIODS_S * RATE))
        assert not eeg.get("footer")
    else:
        # Our process ended (crash or Ctrl-C): LabRecorder took what was sent and closed.
        _check_prefix(eeg, source, interrupted_at - int(WRITE_PERIODS_S * RATE))
        assert int(eeg["footer"]["info"]["sample_count"][0]) == len(eeg["time_stamps"])
    markers = _stream(streams, f"{source.name}-Markers")
    got = [v[0] for v in markers["time_series"]]
    assert got == [m for _, m in source.sent_markers][:len(got)]
    early = [m for t, m in source.sent_markers
             if t < source.stamp(interrupted_at) - WRITE_PERIODS_S]
    assert early and got[:len(early)] == early


def _pull_all(inlet: pylsl.StreamInlet) -> tuple[list, list]:
    chunks, stamps = [], []
    while True:
        chunk, ts = inlet.pull_chunk(timeout=0.0, max_samples=10_000)
        if not ts:
            return chunks, stamps
        chunks += chunk
        stamps += ts


def test_pipeline_outputs_in_the_file_equal_those_read_live(tmp_path):
    name = f"rec-{uuid.uuid4().hex[:8]}"
    rng = np.random.default_rng(3)
    n = int(5.0 * RATE)
    labels = ("Fp1", "Fp2", "C3", "Cz", "C4", "T3", "O1", "O2")
    data = 20 * rng.standard_normal((n, len(labels))).astype(np.float32)
    events = [(0.8, "left"), (1.9, "right"), (3.3, "left"), (4.2, "right")]
    player = Player(Recording(data, RATE, [ChannelInfo(c, "microvolts", "EEG") for c in labels],
                              events), name=name, chunk_seconds=0.02)
    config = RunConfig.from_dict({
        "stream": {"name": name, "resolve_timeout": EVENTUALLY_S, "stall_timeout": 5.0},
        "markers": {"name": f"{name}-Markers"},
        "windows": {"n_patches": 1, "hop": 0.5},
        "models": {"tokenizer": str(PARITY_DIR / "tokenizer.pt"),
                   "classifier": str(PARITY_DIR / "foundation_model.pt"),
                   "watch_classifier": False},
        "budgets": {"end_to_end_ms": 5000.0, "inference_ms": 5000.0},
        "outlets": {"source_id": f"{name}-out"},
    })
    pipe = Pipeline(config).start()
    outputs = [f"{name}-out-{kind}" for kind in
               ("predictions", "tokens", "reconstruction", "metrics")]
    live = {}
    for source_id in outputs:
        (info,) = pylsl.resolve_byprop("source_id", source_id, timeout=EVENTUALLY_S)
        live[source_id] = pylsl.StreamInlet(info, max_buflen=60)
        live[source_id].open_stream(timeout=EVENTUALLY_S)
    queries = [StreamQuery(source_id=i) for i in (player.source_id, f"{player.source_id}-markers",
                                                  *outputs)]
    path = tmp_path / "pipeline.xdf"
    try:
        with Recorder(path, queries):
            player.start()
            player.join(timeout=15.0)
            done = -1
            while pipe.hub.status().windows_done != done:  # until the last window is out
                done = pipe.hub.status().windows_done
                time.sleep(0.5)
        read_live = {source_id: _pull_all(inlet) for source_id, inlet in live.items()}
    finally:
        pipe.stop()
        player.stop()
    assert done >= 6
    streams, _ = pyxdf.load_xdf(str(path), synchronize_clocks=False, dejitter_timestamps=False)
    by_id = {s["info"]["source_id"][0]: s for s in streams}
    assert set(by_id) == {q.source_id for q in queries}
    np.testing.assert_array_equal(by_id[player.source_id]["time_series"], data)
    assert [v[0] for v in by_id[f"{player.source_id}-markers"]["time_series"]] == [
        label for _, label in events]
    for source_id, (chunks, stamps) in read_live.items():
        recorded = by_id[source_id]
        assert len(stamps) >= done, source_id
        # Same values and the very stamps pushed (raw LSL times on both sides).
        np.testing.assert_array_equal(recorded["time_series"], np.asarray(chunks), source_id)
        np.testing.assert_array_equal(recorded["time_stamps"], np.asarray(stamps), source_id)


def test_bad_requests_are_refused_with_what_to_do(tmp_path):
    existing = tmp_path / "taken.xdf"
    existing.write_bytes(b"XDF:")
    with pytest.raises(FileExistsError, match="already exists"):
        Recorder(existing, [StreamQuery(name="x")])
    with pytest.raises(ValueError, match=r"must end in \.xdf"):
        Recorder(tmp_path / "session.fif", [StreamQuery(name="x")])
    with pytest.raises(ValueError, match="at least one of"):
        StreamQuery()
    missing = f"missing-{uuid.uuid4().hex[:8]}"
    with pytest.raises(LookupError, match=f"No LSL stream matches name='{missing}'"):
        Recorder(tmp_path / "none.xdf", [StreamQuery(name=missing)],
                 resolve_timeout=0.5).start()
    assert not (tmp_path / "none.xdf").exists()
