"""An XDF file cut mid-chunk (a recorder killed, a copy stopped early) is read as far as
its complete chunks go, with one line that gives both lengths."""

import logging
import uuid

import numpy as np
import pytest
import pyxdf

from neurorvq_stream.report import load_session
from neurorvq_stream.streamer import Player, Recorder, load_recording
from neurorvq_stream.streamer._lsl import ChannelInfo
from neurorvq_stream.streamer._player import Recording
from neurorvq_stream.streamer._recorder import StreamQuery
from neurorvq_stream.streamer._xdf import complete_length, load_xdf

# Its module-scoped fixtures are built once: every test of the module on one xdist worker.
pytestmark = [pytest.mark.xdist_group("streamer/test_xdf.py"), pytest.mark.slow]

RATE = 250.0


@pytest.fixture(scope="module")
def recorded(tmp_path_factory):
    """A real LabRecorder file: 2 s of 4-channel EEG with two markers, replayed live."""
    data = np.arange(int(2 * RATE) * 4, dtype=np.float32).reshape(-1, 4)
    rec = Recording(data, RATE, [ChannelInfo(f"C{k}", "microvolts", "EEG") for k in range(4)],
                    [(0.5, "a"), (1.5, "b")])
    player = Player(rec, name=f"xdf-{uuid.uuid4().hex[:8]}")
    path = tmp_path_factory.mktemp("xdf") / "session.xdf"
    with Recorder(path, [StreamQuery(source_id=player.source_id),
                         StreamQuery(source_id=f"{player.source_id}-markers")]):
        player.start()
        player.join(30.0)
    return path, data


def _chunk_starts(path) -> list[int]:
    """Byte offsets of the file's chunks (the walk the reader does, written out here)."""
    raw, pos, starts = path.read_bytes(), 4, []
    while pos < len(raw):
        starts.append(pos)
        width = raw[pos]
        pos += 1 + width + int.from_bytes(raw[pos + 1:pos + 1 + width], "little")
    return starts


def test_a_whole_file_reads_as_pyxdf_reads_it(recorded, caplog):
    path, data = recorded
    assert complete_length(path) == (path.stat().st_size,) * 2
    with caplog.at_level(logging.WARNING):
        streams, _ = load_xdf(path)
    assert not caplog.records
    eeg = next(s for s in streams if s["info"]["type"][0] == "EEG")
    np.testing.assert_array_equal(eeg["time_series"], data)


@pytest.mark.parametrize("where", ["samples", "last chunk"])
def test_a_file_cut_mid_chunk_keeps_its_complete_chunks_and_says_so_once(recorded, tmp_path,
                                                                         caplog, where):
    path, data = recorded
    starts = _chunk_starts(path)
    raw = path.read_bytes()
    # Inside a chunk in the middle (samples), or inside the last one (a footer; pyxdf
    # alone raises on some of these).
    at = starts[len(starts) // 2] if where == "samples" else starts[-1]
    cut = tmp_path / "cut.xdf"
    cut.write_bytes(raw[:at + 7])
    with caplog.at_level(logging.WARNING):
        streams, _ = load_xdf(cut)
    end = starts[starts.index(at) + 1] if at != starts[-1] else len(raw)
    assert [r.getMessage() for r in caplog.records] == [
        f"Recording {str(cut)!r} is cut short: the file has {at + 7} bytes, its last chunk "
        f"(at byte {at}) needs {end} (the recorder was stopped abnormally or the copy is "
        f"incomplete); reading the {at} bytes of complete chunks."]
    whole, _ = pyxdf.load_xdf(str(path))
    for got, full in zip(sorted(streams, key=lambda s: s["info"]["name"][0]),
                         sorted(whole, key=lambda s: s["info"]["name"][0]), strict=True):
        n = len(got["time_stamps"])  # a prefix of what the whole file holds
        if isinstance(full["time_series"], list):  # markers
            assert got["time_series"] == full["time_series"][:n]
        else:
            assert n > 0 and (n < len(data) or where == "last chunk")
            np.testing.assert_array_equal(got["time_series"], full["time_series"][:n])
    # play / calibrate --recording and report go on with what is there.
    replay = load_recording(cut)
    np.testing.assert_array_equal(replay.data, data[:len(replay.data)])
    session = load_session(cut)
    assert session.eeg is not None and len(session.eeg.times) == len(replay.data)
