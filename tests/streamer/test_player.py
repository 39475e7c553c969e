"""The player replays a real BioSemi EDF segment, and XDF recordings, with their markers."""

import logging
import struct
import time
import uuid
from xml.sax.saxutils import escape

import mne
import numpy as np
import pytest
from helpers import CLOCK_SYNC_S, EVENTUALLY_S, wait_until

from neurorvq_stream.cli import main
from neurorvq_stream.streamer import Player, bundled_recording, load_recording
from neurorvq_stream.streamer._inlet import EEGInlet, MarkerInlet
from neurorvq_stream.streamer._outlets import OutletIdentity, ResultOutlets
from neurorvq_stream.streamer._player import RecordingError
from neurorvq_stream.streamer._recorder import Recorder, StreamQuery
from neurorvq_stream.streamer._results import PipelineStatus, WindowResult

# Its module-scoped fixtures are built once: every test of the module on one xdist worker.
pytestmark = pytest.mark.xdist_group("streamer/test_player.py")

SPEED = 4.0


@pytest.fixture(scope="module")
def segment():
    return load_recording(bundled_recording("s01"), montage="biosemi128", tmin=6.0, tmax=8.0)


def test_recording_keeps_file_units_positions_and_events(segment):
    raw = mne.io.read_raw(bundled_recording("s01"), verbose="error").crop(6.0, 8.0)
    np.testing.assert_allclose(segment.data, raw.get_data().T * 1e6, rtol=1e-5, atol=1e-3)
    assert segment.sfreq == raw.info["sfreq"]
    assert segment.channels[0].label == raw.ch_names[0]
    assert {c.unit for c in segment.channels} == {"microvolts"}
    assert all(c.location is not None for c in segment.channels)
    expected = [(a["onset"] - raw.first_time, a["description"]) for a in raw.annotations
                if not a["description"].lower().startswith(("bad", "boundary"))]
    assert [e[1] for e in segment.events] == [e[1] for e in expected]
    np.testing.assert_allclose([e[0] for e in segment.events], [e[0] for e in expected])


@pytest.mark.slow
def test_replay_sends_the_samples_and_markers_on_the_scaled_clock(segment):
    name = f"play-{uuid.uuid4().hex[:8]}"
    player = Player(segment, name=name, speed=SPEED)
    inlet = EEGInlet(name=name, resolve_timeout=EVENTUALLY_S)
    markers = MarkerInlet(name=f"{name}-Markers", resolve_timeout=EVENTUALLY_S)
    markers.open()
    inlet.open()
    player.start()
    chunks, stamps, got = [], [], []

    def everything_arrived() -> bool:
        d, t, _ = inlet.pull(0.01)
        chunks.append(d)
        stamps.append(t)
        got.extend(markers.pull())
        return sum(map(len, stamps)) >= len(segment.data) and len(got) >= len(segment.events)

    wait_until(everything_arrived, "every sample and marker")
    player.join(EVENTUALLY_S)
    data, ts = np.concatenate(chunks), np.concatenate(stamps)
    np.testing.assert_array_equal(data, segment.data)
    # Sample n is stamped t0 + n / (sfreq * speed) on the player's clock, seen through the
    # inlet's clock-offset estimate; a late push (a busy machine) keeps its stamp.
    np.testing.assert_allclose(ts, player.t0 + np.arange(len(ts)) / (segment.sfreq * SPEED),
                               atol=CLOCK_SYNC_S, rtol=0)
    assert [m for _, m in got] == [label for _, label in segment.events]
    np.testing.assert_allclose([t for t, _ in got],
                               [player.t0 + onset / SPEED for onset, _ in segment.events],
                               atol=CLOCK_SYNC_S, rtol=0)
    assert inlet.counters.gaps == 0 and not player.is_alive()


@pytest.mark.slow
def test_loop_continues_the_clock_without_a_gap(segment):
    name = f"loop-{uuid.uuid4().hex[:8]}"
    short = load_recording(bundled_recording("s01"), tmin=6.0, tmax=6.5)
    player = Player(short, name=name, speed=SPEED, loop=True)
    inlet = EEGInlet(name=name, resolve_timeout=EVENTUALLY_S)
    inlet.open()
    player.start()
    received = []

    def three_loops() -> bool:
        received.append(inlet.pull(0.01)[1])
        return sum(map(len, received)) >= 3 * len(short.data)

    wait_until(three_loops, "three loops of the recording")
    player.stop()
    ts = np.concatenate(received)
    assert inlet.counters.gaps == 0
    # Stamps go on counting across the loop boundaries: never back, never a jump.
    np.testing.assert_allclose(ts, player.t0 + np.arange(len(ts)) / (short.sfreq * SPEED),
                               atol=CLOCK_SYNC_S, rtol=0)


def test_bad_inputs_are_refused(tmp_path, segment):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_recording(tmp_path / "nothing.edf")
    with pytest.raises(ValueError, match="speed must be > 0"):
        Player(segment, name="x", speed=0)


def _edf(path, seconds: float = 20.0):
    """A real 4-channel EDF written by MNE (through edfio)."""
    rng = np.random.default_rng(3)
    info = mne.create_info(["Fz", "Cz", "Pz", "Oz"], 256.0, "eeg")
    raw = mne.io.RawArray(20e-6 * rng.standard_normal((4, int(seconds * 256))), info,
                          verbose="error")
    raw.set_annotations(mne.Annotations([2.0, seconds - 5.0], [0.0, 0.0], ["early", "late"]))
    mne.export.export_raw(path, raw, fmt="edf", overwrite=True, verbose="error")
    return path


def _one_line(err) -> str:
    message = str(err.value)
    assert "\n" not in message
    return message


@pytest.mark.parametrize(
    ("make", "error", "expected"),
    [
        (lambda d: _write(d / "take.xdf", "not an xdf file\n"), RecordingError,
         "is not an XDF file (it does not start with the XDF mark 'XDF:'); is it another "
         "format renamed .xdf?"),
        (lambda d: d, RecordingError, "is a folder; pass one recording file inside it (EDF "
                                      "(.edf), BDF (.bdf), FIF (.fif .fif.gz), XDF (.xdf))."),
        (lambda d: _write(d / "take.txt", "1 2 3\n"), RecordingError,
         "has an extension the player does not read; it replays EDF (.edf)"),
        (lambda d: _write(d / "take.edf", "not an edf\n"), RecordingError,
         "is not a readable EDF file (ValueError: Bad EDF file provided.); is it damaged"),
        (lambda d: _write(d / "take_raw.fif", "not a fif\n"), RecordingError,
         "is not a readable FIF file ("),
        (lambda d: _write(d / "take.bdf", ""), RecordingError, "is empty (0 bytes)."),
    ],
)
def test_files_that_cannot_be_played_get_one_line(tmp_path, make, error, expected):
    path = make(tmp_path)
    with pytest.raises(error) as err:
        load_recording(path)
    assert _one_line(err).startswith(f"Recording {str(path)!r} ")
    assert expected in str(err.value)


def _write(path, text):
    path.write_text(text)
    return path


def test_a_truncated_fif_is_refused(tmp_path):
    path = tmp_path / "take_raw.fif"
    info = mne.create_info(4, 100.0, "eeg")
    mne.io.RawArray(np.ones((4, 6000)) * 1e-5, info, verbose="error").save(path, verbose="error")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(RecordingError) as err:
        load_recording(path)
    assert "is not a readable FIF file" in _one_line(err)


def test_a_truncated_edf_plays_what_is_there_and_says_how_much_is_missing(tmp_path, caplog):
    path = _edf(tmp_path / "take.edf", seconds=20.0)
    whole = load_recording(path)
    assert whole.duration == 20.0 and not caplog.records
    data = path.read_bytes()
    header = int(data[184:192])  # EDF: bytes in the header record
    record = (len(data) - header) // 20  # 1 s data records
    path.write_bytes(data[: header + 6 * record + record // 2])  # 6.5 of 20 records
    with caplog.at_level(logging.WARNING, logger="neurorvq_stream"):
        cut = load_recording(path)
    assert cut.duration == 6.0
    np.testing.assert_allclose(cut.data, whole.data[: len(cut.data)])
    assert [label for _, label in cut.events] == ["early"]  # "late" was in the lost part
    messages = [r.getMessage() for r in caplog.records]
    assert messages == [
        f"Recording {str(path)!r} is cut short: its header declares 20.0 s, the file holds "
        "6.0 s (stopped abnormally, or an incomplete copy); using the 6.0 s that are there."]


def test_the_bundled_recording_cut_to_200_kb_says_both_lengths(tmp_path, caplog):
    path = tmp_path / "s02-cut.edf"
    path.write_bytes(bundled_recording("s02").read_bytes()[:200_000])
    with caplog.at_level(logging.WARNING, logger="neurorvq_stream"):
        cut = load_recording(path)
    assert cut.duration == 2.0
    assert [r.getMessage() for r in caplog.records] == [
        f"Recording {str(path)!r} is cut short: its header declares 1201.0 s, the file holds "
        "2.0 s (stopped abnormally, or an incomplete copy); using the 2.0 s that are there."]


def test_play_reports_a_bad_file_in_one_line_and_warns_on_a_truncated_one(tmp_path, capsys,
                                                                          caplog):
    fake = _write(tmp_path / "take.xdf", "not an xdf\n")
    assert main(["play", str(fake)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: Recording {str(fake)!r} is not an XDF file")
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert main(["play", str(tmp_path)]) == 2
    assert "is a folder" in capsys.readouterr().err
    path = _edf(tmp_path / "take.edf", seconds=10.0)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])  # 4.x of 10 records
    with caplog.at_level(logging.WARNING, logger="neurorvq_stream"):
        assert main(["play", str(path), "--name", f"cut-{uuid.uuid4().hex[:8]}",
                     "--speed", "20", "--duration", "0.3"]) == 0
    assert [r.getMessage() for r in caplog.records] == [
        f"Recording {str(path)!r} is cut short: its header declares 10.0 s, the file holds "
        "4.0 s (stopped abnormally, or an incomplete copy); using the 4.0 s that are there."]


def _replay(recording, name: str) -> tuple[np.ndarray, list[tuple[float, str]]]:
    """Stream ``recording`` at SPEED and read it back live: samples and markers."""
    player = Player(recording, name=name, speed=SPEED)
    inlet = EEGInlet(name=name, resolve_timeout=EVENTUALLY_S)
    markers = MarkerInlet(name=f"{name}-Markers", resolve_timeout=EVENTUALLY_S)
    markers.open()
    inlet.open()
    player.start()
    chunks, got = [], []
    end = time.monotonic() + 10.0
    while sum(map(len, chunks)) < len(recording.data) and time.monotonic() < end:
        chunks.append(inlet.pull(0.01)[0])
        got += markers.pull()
    player.join(2.0)
    time.sleep(0.05)
    got += markers.pull()
    inlet.close()
    markers.close()
    return np.concatenate(chunks), got


@pytest.mark.slow
def test_a_recording_made_here_replays_its_eeg_and_markers(tmp_path, segment):
    """Player + pipeline-style outlets recorded by the Recorder, loaded back, replayed."""
    name = f"xdf-{uuid.uuid4().hex[:8]}"
    player = Player(segment, name=name, speed=SPEED)
    # The reconstruction outlet carries EEG-like channels: the amplifier stream must win.
    outlet_channels = tuple(f"e{k}" for k in range(16))
    outlets = ResultOutlets(OutletIdentity(f"{name}-out", f"{name}-out"), outlet_channels, 1,
                            hop_samples=200, meta={"source_stream": name},
                            token_layout=(4, 8), enabled=("Reconstruction", "Metrics"))
    queries = [StreamQuery(source_id=i) for i in (
        player.source_id, f"{player.source_id}-markers", f"{name}-out-reconstruction",
        f"{name}-out-metrics")]
    path = tmp_path / "session.xdf"
    with Recorder(path, queries):
        player.start()
        for k in range(3):
            result = WindowResult(
                index=k, t_last=time.monotonic(), channels=outlet_channels,
                source_channels=outlet_channels, signal=np.zeros((16, 200), np.float32),
                n_patches=1, reconstruction=np.ones((16, 200), np.float32),
                latency={"end_to_end": 1.0})
            outlets.push(result)
            outlets.push_metrics(result, PipelineStatus())
        player.join(5.0)
    outlets.close()
    loaded = load_recording(path)
    np.testing.assert_array_equal(loaded.data, segment.data)
    assert loaded.sfreq == segment.sfreq
    assert [c.label for c in loaded.channels] == [c.label for c in segment.channels]
    assert {c.unit for c in loaded.channels} == {"microvolts"}
    np.testing.assert_allclose([c.location for c in loaded.channels],
                               [c.location for c in segment.channels], rtol=1e-5)
    assert [e[1] for e in loaded.events] == [e[1] for e in segment.events]
    # Onsets come back in file time, at the samples they were sent with.
    np.testing.assert_allclose([e[0] for e in loaded.events], [e[0] for e in segment.events],
                               atol=1 / segment.sfreq)
    data, markers = _replay(loaded, f"{name}-again")
    np.testing.assert_array_equal(data, segment.data)
    assert [m for _, m in markers] == [e[1] for e in segment.events]


# ---------------------------------------------------------------- a hand-built XDF file
# Written here from the XDF 1.0 specification (chunks of [NumLengthBytes][Length][Tag]
# [Content], little-endian), to check the reader on what LabRecorder never writes: clock
# offsets that differ per stream, a rate that drifts from the nominal one, irregular and
# simultaneous markers, markers outside the EEG, an empty stream.

def _varlen(n: int) -> bytes:
    return b"\x01" + struct.pack("<B", n) if n < 256 else b"\x04" + struct.pack("<I", n)


def _chunk(tag: int, content: bytes, stream_id: int | None = None) -> bytes:
    body = struct.pack("<H", tag) + (b"" if stream_id is None else struct.pack("<I", stream_id))
    body += content
    return b"\x08" + struct.pack("<Q", len(body)) + body


def _header(name: str, kind: str, n_ch: int, srate: float, fmt: str, desc: str = "") -> bytes:
    return (f"<?xml version='1.0'?><info><name>{escape(name)}</name><type>{kind}</type>"
            f"<channel_count>{n_ch}</channel_count><nominal_srate>{srate}</nominal_srate>"
            f"<channel_format>{fmt}</channel_format><source_id>{name}</source_id>"
            f"<desc>{desc}</desc></info>").encode()


def _samples(stamps, rows, fmt: str) -> bytes:
    out = b"\x04" + struct.pack("<I", len(stamps))
    for t, row in zip(stamps, rows, strict=True):
        out += b"\x08" + struct.pack("<d", t)
        if fmt == "string":
            for value in row:
                raw = value.encode()
                out += _varlen(len(raw)) + raw
        else:
            out += np.asarray(row, "<f4").tobytes()
    return out


def _offsets(times, offset: float) -> list[bytes]:
    return [struct.pack("<dd", t, offset) for t in times]


TRUE_RATE, NOMINAL = 100.5, 100.0
LABELS = ("Fz", "Cz", "Pz", "Oz")
# EEG sample index each marker was sent at, its label, and whether it lies inside the EEG.
MARKS = [(-40, "before", False), (30, "stim/1", True), (555, "rest", True),
         (555, "été", True), (900, "stim/2", True), (1040, "after", False)]


@pytest.fixture
def hand_built_xdf(tmp_path):
    rng = np.random.default_rng(7)
    n = 1000
    eeg = (rng.standard_normal((n, len(LABELS))) * 10).astype(np.float32)
    # Raw stamps: a drifting amplifier clock with 0.3 ms jitter; its LSL clock is 0.5 s
    # behind the recorder's, the marker source's 0.25 s behind.
    raw_eeg = 50.0 + np.arange(n) / TRUE_RATE + rng.uniform(-3e-4, 3e-4, n)
    true_t = 50.5 + np.arange(n) / TRUE_RATE  # recorder time of each sample
    raw_marks = [50.5 + k / TRUE_RATE - 0.25 for k, _, _ in MARKS]
    channels = "".join(f"<channel><label>{c}</label><unit>µV</unit><type>EEG</type>"
                       f"<location><X>{k}</X><Y>1.5</Y><Z>-2</Z></location></channel>"
                       for k, c in enumerate(LABELS))
    ours = "<neurorvq><source_stream>amp</source_stream></neurorvq>"
    body = b"XDF:" + _chunk(1, b"<?xml version='1.0'?><info><version>1.0</version></info>")
    # Our reconstruction outlet comes first and has more channels: it must still lose.
    body += _chunk(2, _header("reconstruction", "EEG", 8, 200, "float32", ours), 3)
    body += _chunk(2, _header("amp", "EEG", 4, NOMINAL, "float32",
                              f"<channels>{channels}</channels>"), 1)
    body += _chunk(2, _header("amp-Markers", "Markers", 1, 0, "string"), 2)
    body += _chunk(2, _header("silent", "EEG", 64, 250, "float32"), 4)
    for offset in _offsets([40.0, 70.0], 0.5):
        body += _chunk(4, offset, 1)
    for offset in _offsets([40.0, 70.0], 0.25):
        body += _chunk(4, offset, 2)
    body += _chunk(3, _samples(raw_marks[:1], [["before"]], "string"), 2)
    for a in range(0, n, 100):  # EEG chunks with markers in between, as a recorder writes
        body += _chunk(3, _samples(raw_eeg[a:a + 100], eeg[a:a + 100], "float32"), 1)
        for (k, label, _), t in zip(MARKS[1:], raw_marks[1:], strict=True):
            if a <= k < a + 100 or (k >= n and a == 900):
                body += _chunk(3, _samples([t], [[label]], "string"), 2)
    body += _chunk(3, _samples(true_t[:50:5], np.ones((10, 8)), "float32"), 3)
    path = tmp_path / "hand_built.xdf"
    path.write_bytes(body)
    return path, eeg


def test_hand_built_xdf_gives_the_amplifier_stream_and_markers_on_their_samples(
        hand_built_xdf):
    path, eeg = hand_built_xdf
    rec = load_recording(path)
    np.testing.assert_array_equal(rec.data, eeg)  # not the bigger outlet, nor the empty one
    assert rec.sfreq == NOMINAL
    assert [c.label for c in rec.channels] == list(LABELS)
    assert {c.unit for c in rec.channels} == {"microvolts"}
    assert rec.channels[2].location == (2.0, 1.5, -2.0)
    inside = [(k, label) for k, label, ok in MARKS if ok]
    assert [label for _, label in rec.events] == [label for _, label in inside]
    # Each marker sits on the sample it was sent with, in nominal-rate time: the player
    # replays sample k at k / 100 s, so that is where its marker must go (not k / 100.5).
    np.testing.assert_allclose([t for t, _ in rec.events], [k / NOMINAL for k, _ in inside],
                               atol=0.2 / NOMINAL)


def test_hand_built_xdf_crop_keeps_markers_on_their_samples(hand_built_xdf):
    path, eeg = hand_built_xdf
    rec = load_recording(path, tmin=3.0, tmax=8.0)
    first = int(np.ceil(3.0 * TRUE_RATE))
    np.testing.assert_array_equal(rec.data, eeg[first:first + len(rec.data)])
    assert abs(len(rec.data) - 5.0 * TRUE_RATE) <= 1
    assert [label for _, label in rec.events] == ["rest", "été"]
    np.testing.assert_allclose([t for t, _ in rec.events], [(555 - first) / NOMINAL] * 2,
                               atol=0.2 / NOMINAL)
    data, markers = _replay(rec, f"hand-{uuid.uuid4().hex[:8]}")
    np.testing.assert_array_equal(data, rec.data)
    assert [m for _, m in markers] == ["rest", "été"]


def test_xdf_without_a_stream_to_replay_is_refused(tmp_path):
    path = tmp_path / "markers_only.xdf"
    path.write_bytes(b"XDF:" + _chunk(1, b"<?xml version='1.0'?><info/>")
                     + _chunk(2, _header("m", "Markers", 1, 0, "string"), 1)
                     + _chunk(3, _samples([1.0], [["x"]], "string"), 1))
    with pytest.raises(ValueError, match="no regular-rate numeric stream"):
        load_recording(path)
