"""Calibration: the same decoders from a recorded file and from its live replay over LSL,
the command line, and the choice of decoder on held-out trials."""

import json
import re
import threading
import time
import uuid

import mne
import numpy as np
import pylsl
import pytest
from helpers import EVENTUALLY_S

from neurorvq_stream.cli import main
from neurorvq_stream.decoders import load_decoder
from neurorvq_stream.decoders._kinds import CLASSICAL_KINDS
from neurorvq_stream.engines._checkpoint import shipped_models_dir
from neurorvq_stream.streamer import Player, RunConfig, bundled_recording, load_recording
from neurorvq_stream.streamer._lsl import ChannelInfo, write_channels
from neurorvq_stream.training._cards import ModelCard
from neurorvq_stream.training._decoder_set import LabelledEpochs, choose, fit_decoders
from neurorvq_stream.training._scoring import held_out_score
from neurorvq_stream.training.calibrate import (
    DEFAULT_KINDS,
    calibrate,
    parse_classes,
    read_epochs,
    record_epochs,
)

# Its module fixture (a 60 s file) is quick to make: the tests spread over the workers.
pytestmark = pytest.mark.slow

CLASSES = ("checker-left", "checker-right")
SECONDS = 60.0  # of sub-s01: 10 checkerboards per side


@pytest.fixture(scope="module")
def recording_file(s01, tmp_path_factory):
    """60 s of sub-s01 on 10 channels as a FIF file with its markers (annotations)."""
    from helpers import SMALL_CHANNELS

    picks = [s01.source_channels[s01.channels.index(c)] for c in SMALL_CHANNELS]
    raw = mne.io.read_raw_edf(bundled_recording("s01"), preload=True, verbose="error")
    raw.pick(picks).crop(0.0, SECONDS)
    path = tmp_path_factory.mktemp("rec") / "s01_checker_raw.fif"
    raw.save(path, verbose="error")
    return path


def _config(name: str = "unused") -> RunConfig:
    return RunConfig.from_dict({
        "stream": {"name": name, "resolve_timeout": EVENTUALLY_S},
        "markers": {"name": f"{name}-Markers"},
        "mapping": {"montage": "biosemi128"},
        "windows": {"mode": "markers", "marker_offset": 0.0, "n_patches": 1}})


def test_recorded_file_and_its_live_replay_give_the_same_decoders(
        recording_file, tiny_foundation_model, tmp_path):
    kinds = ("amplitude-lr", "xdawn-tangent", "neurorvq-head")
    offline = calibrate(_config(), CLASSES, tmp_path / "file", recording=recording_file,
                        kinds=kinds, foundation_model=tiny_foundation_model, progress=False)
    name = f"calib-{uuid.uuid4().hex[:8]}"  # unique: other test runs share this machine
    # Real time: faster replays shift marker-locked windows by about 0.4 samples per unit
    # of speed (the marker and EEG clocks disagree by 1-2 ms here, and a replay at speed s
    # makes that s times more samples).
    player = Player(load_recording(recording_file, montage="biosemi128"), name=name)
    try:
        live = calibrate(_config(name), CLASSES, tmp_path / "live", kinds=kinds,
                         foundation_model=tiny_foundation_model, progress=False,
                         duration=SECONDS + 5.0, on_start=player.start)
    finally:
        player.stop()
    a, b = offline.chosen.epochs, live.chosen.epochs
    assert a.spec == b.spec and a.n_per_class == b.n_per_class
    assert min(a.n_per_class.values()) >= 9  # every epoch of the file, none thrown away
    np.testing.assert_array_equal(a.y, b.y)
    np.testing.assert_allclose(a.x, b.x, atol=1e-3)  # uV; LSL float32 and chunking
    for f_off, f_live in zip(offline.fitted, live.fitted, strict=True):
        assert f_off.kind == f_live.kind
        np.testing.assert_allclose(f_off.probabilities(a.x), f_live.probabilities(a.x),
                                   atol=1e-3, err_msg=f_off.kind)
    assert offline.chosen.kind == live.chosen.kind
    assert offline.path.suffix == live.path.suffix


def test_cli_calibrates_from_a_file_and_writes_decoder_sidecar_and_card(
        recording_file, tmp_path, capsys):
    code = main(["calibrate", "--recording", str(recording_file), "--classes", *CLASSES,
                 "--output", str(tmp_path / "mine.safetensors"), "--montage", "biosemi128",
                 "--marker-offset", "0", "--patches", "1", "--l-freq", "0.1",
                 "--decoders", "amplitude-lr", "xdawn-tangent"])
    assert code == 0
    out = capsys.readouterr().out
    assert "| amplitude-lr" in out and "| xdawn-tangent" in out and "Chance: 0.500" in out
    assert "OOF ECE" in out and "OOF confidence / accuracy" in out
    path = next(tmp_path.glob("mine.skops"))  # the chosen classical kind's format
    assert f"to {path}" in out and "highest cross-validated balanced accuracy" in out
    meta = json.loads(path.with_name("mine.skops.json").read_text())
    spec = meta["window_spec"]
    assert spec["preprocessing"]["l_freq"] == 0.1 and spec["n_patches"] == 1
    assert meta["window_spec"]["labels"] == list(CLASSES)
    assert len(meta["scores"]["cv_folds"]) == 5
    assert 0.0 <= meta["scores"]["oof_ece"] <= 1.0
    assert meta["calibration"]["temperature"] == max(
        meta["calibration"]["likelihood_temperature"], meta["calibration"]["bound_temperature"])
    decoder = load_decoder(path)
    assert decoder.spec.channels == tuple(meta["channels"]) and decoder.kind in out
    card = ModelCard.from_dict(json.loads(path.with_suffix(".card.json").read_text()))
    assert card.model == path.name and card.sections["Chosen decoder"]["kind"] == decoder.kind
    assert path.with_suffix(".md").read_text() == card.markdown()


def test_every_shipped_model_card_validates_and_matches_its_markdown():
    cards = sorted(shipped_models_dir().glob("*.card.json"))
    assert len(cards) == 4
    for path in cards:
        card = ModelCard.from_dict(json.loads(path.read_text()), source=path.name)
        assert (path.parent / card.model).is_file()
        assert path.with_name(card.model).with_suffix(".md").read_text() == card.markdown()
    with pytest.raises(ModelCard.error, match=r"sections\.Training\.steps: expected a number"):
        ModelCard.from_dict({"model": "m.pt", "title": "t", "summary": "s",
                             "sections": {"Training": {"steps": [1, 2]}}})


def test_cli_reports_bad_requests_in_one_line(recording_file, tmp_path, capsys):
    args = ["calibrate", "--recording", str(recording_file), "--output",
            str(tmp_path / "x"), "--montage", "biosemi128"]
    assert main([*args, "--classes", *CLASSES, "--decoders", "lda"]) == 2
    assert "Unknown decoder kind(s) ['lda']" in capsys.readouterr().err
    assert main([*args, "--classes", "checker-left", "nothing-like-this"]) == 2
    assert "['nothing-like-this'] never occur" in capsys.readouterr().err


@pytest.fixture(scope="module")
def half_flat_file(recording_file, tmp_path_factory):
    """The recording with 6 of its 10 channels flat (0 V) from 20 s to 40 s."""
    raw = mne.io.read_raw_fif(recording_file, preload=True, verbose="error")
    start, stop = raw.time_as_index([20.0, 40.0])
    raw._data[:6, start:stop] = 0.0
    path = tmp_path_factory.mktemp("flat") / "half_flat_raw.fif"
    raw.save(path, verbose="error")
    return path


def test_epochs_run_would_not_classify_are_left_out_and_counted(recording_file,
                                                                half_flat_file, capsys):
    config = _config().override(**{"preprocessing.l_freq": 0.0})  # zeros stay flat
    classes = parse_classes(CLASSES)
    whole = read_epochs(recording_file, config, classes)
    cut = read_epochs(half_flat_file, config, classes)
    assert whole.rejected == dict.fromkeys(CLASSES, 0)
    # The 1 s epochs within 20-40 s have 6 of 10 channels flat (more than 25 %).
    annotations = mne.io.read_raw_fif(recording_file, verbose="error").annotations
    onsets = [a["onset"] for a in annotations if a["description"] in CLASSES]
    inside = sum(20.0 <= t <= 39.0 for t in onsets)
    assert 0 < sum(cut.rejected.values()) == inside
    assert len(cut.y) == len(whole.y) - inside
    assert main(["calibrate", "--recording", str(half_flat_file), "--classes", *CLASSES,
                 "--output", str(cut_path := half_flat_file.with_name("flat.skops")),
                 "--montage", "biosemi128", "--marker-offset", "0", "--patches", "1",
                 "--l-freq", "0", "--decoders", "amplitude-lr"]) == 0
    per = ", ".join(f"{c} {n}" for c, n in cut.rejected.items())
    assert (f"Left out {inside} epochs that run would not classify (too many flagged "
            f"channels): {per}.") in capsys.readouterr().out
    assert cut_path.is_file()


def test_a_file_in_the_wrong_unit_is_refused_with_runs_message(recording_file):
    config = _config().override(**{"stream.unit": "nV"})  # microvolts read as nanovolts
    with pytest.raises(ValueError) as err:
        read_epochs(recording_file, config, parse_classes(CLASSES))
    assert re.fullmatch(
        rf"Recording {re.escape(repr(str(recording_file)))}: amplitudes are ~[0-9.e-]+ uV, far "
        r"below EEG: the stream is probably in volts or millivolts; set stream.unit \(--unit\) "
        r"to the unit the amplifier sends. run flags every window of such a stream and "
        r"classifies none, so calibrate trains on none either.", str(err.value))


def test_calibrating_on_a_stream_with_the_wrong_rate_says_what_run_says():
    """Declares 128 Hz, sends 256 samples a second; markers every 0.5 s."""
    name = f"calib-rate-{uuid.uuid4().hex[:8]}"
    labels = ("Fp1", "Fp2", "C3", "Cz", "C4", "O1", "O2", "Pz")
    info = pylsl.StreamInfo(name, "EEG", len(labels), 128.0, "float32", name)
    write_channels(info, [ChannelInfo(c, "microvolts", "EEG") for c in labels])
    eeg = pylsl.StreamOutlet(info)
    markers = pylsl.StreamOutlet(pylsl.StreamInfo(f"{name}-Markers", "Markers", 1, 0.0,
                                                  "string", f"{name}-markers"))
    data = (20 * np.random.default_rng(0).standard_normal((16 * 200, len(labels))))
    stop = threading.Event()

    def send() -> None:
        start, k = time.monotonic(), 0
        while not stop.is_set():
            eeg.push_chunk(data[k % len(data):k % len(data) + 16].astype(np.float32))
            if k % 128 == 0:
                markers.push_sample([("left", "right")[(k // 128) % 2]])
            k += 16
            time.sleep(max(0.0, start + k / 256 - time.monotonic()))

    sender = threading.Thread(target=send, daemon=True)
    config = RunConfig.from_dict({
        "stream": {"name": name, "resolve_timeout": EVENTUALLY_S, "stall_timeout": 5.0},
        "markers": {"name": f"{name}-Markers"},
        "windows": {"mode": "markers", "n_patches": 1}})
    try:
        with pytest.raises(ValueError) as err:
            record_epochs(config, parse_classes(["left", "right"]), duration=6.0,
                          progress=False, on_start=sender.start)
    finally:
        stop.set()
        sender.join()
    assert re.fullmatch(
        rf"Stream '{name}': samples arrive at [0-9.]+ Hz, not the declared 128 Hz: check the "
        r"amplifier's rate setting. run flags every window of such a stream and classifies "
        r"none, so calibrate trains on none either.", str(err.value))


def test_classes_group_markers():
    assert parse_classes(["face=face-upright,face-inverted", "house=house-upright"]) == {
        "face": ("face-upright", "face-inverted"), "house": ("house-upright",)}
    assert parse_classes(["a", "b"]) == {"a": ("a",), "b": ("b",)}
    with pytest.raises(ValueError, match="two distinct classes"):
        parse_classes(["a"])
    with pytest.raises(ValueError, match="belongs to two classes"):
        parse_classes(["x=a,b", "y=b"])


def test_chosen_decoder_is_no_worse_than_the_best_classical_one_on_held_out_trials(
        checker_epochs, tiny_foundation_model):
    """Choose on the first 60 % of sub-s01 (by CV), score on the last 40 %."""
    e, n = checker_epochs, int(0.6 * len(checker_epochs.y))
    train = LabelledEpochs(e.x[:n], e.y[:n], e.class_names, e.spec, e.class_markers)
    fitted = fit_decoders(DEFAULT_KINDS, train, tiny_foundation_model, progress=False)
    chosen, _ = choose(fitted)
    held_out = {f.kind: held_out_score(f.probabilities(e.x[n:]), e.y[n:]) for f in fitted}
    best_classical = max(held_out[k] for k in CLASSICAL_KINDS)
    # "No worse" up to the sampling error of a balanced accuracy on this many trials.
    tolerance = np.sqrt(best_classical * (1 - best_classical) / len(e.y[n:]))
    assert held_out[chosen.kind] >= best_classical - tolerance, (chosen.kind, held_out)
