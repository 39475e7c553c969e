"""Live calibration over real loopback LSL streams (the bundled recording, replayed fast)."""

import json
import uuid

import numpy as np
import pytest
from sklearn.metrics import balanced_accuracy_score

from neurorvq_stream.engines import NeuroRVQConfig, load_classifier, save_checkpoint
from neurorvq_stream.streamer import Player, RunConfig, bundled_recording
from neurorvq_stream.streamer import load_recording as load_for_replay
from neurorvq_stream.training import (
    CHECKER_CLASSES,
    marker_epochs,
    new_foundation_model,
    new_tokenizer,
)
from neurorvq_stream.training.calibrate import calibrate

TINY = NeuroRVQConfig(depth_encoder=1, depth_decoder=1, n_code=64, code_dim=8, layer_scale=False)


@pytest.fixture
def tiny_fm(tmp_path):
    fm = new_foundation_model(new_tokenizer(TINY), depth=1, seed=0)
    return save_checkpoint(fm, tmp_path / "fm.safetensors")


def test_calibration_from_live_stream_gives_a_working_head(tiny_fm, tmp_path, s01):
    replay = load_for_replay(bundled_recording("s01"), montage="biosemi128", tmax=110.0)
    name = f"calib-{uuid.uuid4().hex[:8]}"  # unique: other test runs share this machine
    player = Player(replay, name=name, speed=5.0)
    player.start()
    config = RunConfig.from_dict({"stream": {"name": name},
                                  "markers": {"name": f"{name}-Markers"},
                                  "windows": {"mode": "markers", "marker_offset": 0.0,
                                              "n_patches": 1}})
    try:
        path = calibrate(config, list(CHECKER_CLASSES), 10, tmp_path / "head.safetensors",
                         foundation_model=tiny_fm, timeout=60.0, progress=False)
    finally:
        player.stop()
    clf = load_classifier(path)
    assert clf.class_names == CHECKER_CLASSES
    meta = json.loads(path.with_name(path.name + ".json").read_text())
    channels = meta["channels"]
    assert len(channels) == len(s01.channels) and meta["provenance"]["window"] == {
        "mode": "markers", "marker_offset": 0.0, "marker_length": 1}
    card = json.loads(path.with_suffix(".card.json").read_text())
    assert card["Calibration"]["training balanced accuracy"] > 0.7
    # Offline epochs of the replayed stretch (same channels, same cut) are what the head
    # was calibrated on, so it must separate them too: online and offline data agree.
    cols = [s01.channels.index(c) for c in channels]
    x, y, onsets = marker_epochs(s01)
    seen = onsets < 100.0
    probs = clf.probabilities(x[seen][:, cols], channels)
    assert np.allclose(probs.sum(1), 1.0, atol=1e-5)
    assert balanced_accuracy_score(y[seen], probs.argmax(1)) > 0.7


def test_calibration_argument_errors(tmp_path, tiny_fm):
    config = RunConfig.from_dict({"stream": {"name": "x"}, "markers": {"name": "y"}})
    with pytest.raises(ValueError, match="two distinct classes"):
        calibrate(config, ["a", "a"], 5, tmp_path / "h.safetensors", tiny_fm)
    with pytest.raises(ValueError, match=r"must end in \.safetensors"):
        calibrate(config, ["a", "b"], 5, tmp_path / "h.onnx", tiny_fm)
