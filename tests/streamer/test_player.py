"""The player replays a real BioSemi EDF segment with its events as markers."""

import logging
import uuid

import mne
import numpy as np
import pytest
from helpers import CLOCK_SYNC_S, EVENTUALLY_S, wait_until

from neurorvq_stream.cli import main
from neurorvq_stream.streamer import Player, bundled_recording, load_recording
from neurorvq_stream.streamer._inlet import EEGInlet, MarkerInlet
from neurorvq_stream.streamer._player import RecordingError

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


def test_loop_continues_the_clock_without_a_gap(segment):
    name = f"loop-{uuid.uuid4().hex[:8]}"
    short = load_recording(bundled_recording(), tmin=6.0, tmax=6.5)
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
    assert (f"Recording {str(path)!r} is shorter than its header says: 6.0 s of 20.0 s are there "
            "(14.0 s, 70% missing: the recording was stopped abnormally or the file was cut "
            "short in a copy). Playing the 6.0 s that are there.") in messages


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
    path.write_bytes(data[: len(data) // 2])
    with caplog.at_level(logging.WARNING, logger="neurorvq_stream"):
        assert main(["play", str(path), "--name", f"cut-{uuid.uuid4().hex[:8]}",
                     "--speed", "20", "--duration", "0.3"]) == 0
    assert any("is shorter than its header says" in r.getMessage() for r in caplog.records)
