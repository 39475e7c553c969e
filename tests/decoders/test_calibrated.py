"""Calibrated probabilities: near the prior where a decoder knows nothing, confident otherwise."""

import json
from pathlib import Path

import numpy as np
import pytest
from scipy.special import expit

from neurorvq_stream.decoders import KINDS, load_decoder
from neurorvq_stream.decoders._calibrated import TemperatureScaling, decision_scores
from neurorvq_stream.decoders._typicality import TypicalityGate
from neurorvq_stream.training import marker_epochs
from neurorvq_stream.training._data import CHECKER_CLASSES
from neurorvq_stream.training._decoder_set import LabelledEpochs, fit_decoders

# Its module-scoped fixtures are built once: every test of the module on one xdist worker.
pytestmark = pytest.mark.xdist_group("decoders/test_calibrated.py")


def test_temperature_follows_what_the_scores_tell():
    rng = np.random.default_rng(0)
    y = np.arange(200) % 2
    unrelated = TemperatureScaling().fit(rng.normal(size=(200, 1)), y)
    assert np.abs(unrelated.predict_proba(rng.normal(size=(50, 1))) - 0.5).mean() < 0.05
    # 200 of 200 right shows an accuracy above 0.05 ** (1 / 200) = 0.985 (one-sided 95 %),
    # not 1.0: that is the confidence separable folds get, not 0.999.
    separable = TemperatureScaling().fit((2 * y - 1)[:, None] * 3.0, y)
    assert separable.predict_proba(np.array([[3.0], [-3.0]]))[:, 1] == pytest.approx(
        [0.05 ** (1 / 200), 1 - 0.05 ** (1 / 200)], abs=1e-4)
    assert separable.likelihood_temperature_ < separable.temperature_
    three = TemperatureScaling().fit(np.eye(3)[np.arange(90) % 3] * 2.0, np.arange(90) % 3)
    p = three.predict_proba(np.eye(3) * 2.0)
    assert np.allclose(p.sum(1), 1.0) and (p.argmax(1) == [0, 1, 2]).all()


@pytest.fixture(scope="module")
def split(checker_epochs):
    """First 60 % of sub-s01's checker epochs to train on, the rest held out."""
    e, n = checker_epochs, int(0.6 * len(checker_epochs.y))
    return LabelledEpochs(e.x[:n], e.y[:n], e.class_names, e.spec, e.class_markers), (
        e.x[n:], e.y[n:])


@pytest.fixture(scope="module")
def fitted(split, tiny_foundation_model):
    kinds = [k for k in KINDS if k != "neurorvq-head-full"]
    return fit_decoders(kinds, split[0], tiny_foundation_model, progress=False)


@pytest.mark.slow
def test_noise_comes_out_near_the_prior(fitted, split):
    """Gaussian noise of the EEG's own amplitude: no decoder claims a class (prior 0.5)."""
    train, _ = split
    std = train.x.std(axis=(0, 2))
    noise = np.random.default_rng(1).normal(size=(40, *train.x.shape[1:])) * std[:, None]
    for f in fitted:
        assert f.probabilities(noise).max(axis=1).mean() < 0.55, f.kind


def test_confidence_is_the_lower_bound_of_the_accuracy_the_folds_show():
    """Overlapping classes: mean confidence on the fitted scores is the accuracy's lower
    bound, a little under the accuracy itself; no decision changes."""
    rng = np.random.default_rng(4)
    y = np.arange(400) % 2
    scores = (2 * y - 1)[:, None] + rng.normal(size=(400, 1))
    t = TemperatureScaling().fit(scores, y)
    p = t.predict_proba(scores)
    accuracy = np.mean((scores[:, 0] > 0) == y)
    assert p.max(axis=1).mean() == pytest.approx(t.accuracy_bound_, abs=1e-4)
    assert accuracy - 0.06 < t.accuracy_bound_ < accuracy
    np.testing.assert_array_equal(p.argmax(axis=1), scores[:, 0] > 0)


def test_decoder_files_of_version_0_2_0_predict_as_before(s01):
    """The 0.2.0 default classifier (temperature only, no bound attributes): loads and gives
    ``gate(sigmoid(score / T))`` with the temperature its sidecar records."""
    path = Path(__file__).parents[1] / "fixtures" / "decoder_v020" / "checker.skops"
    decoder = load_decoder(path)
    recorded = json.loads(path.with_name("checker.skops.json").read_text())["calibration"]
    assert decoder.model.calibrator.temperature_ == pytest.approx(recorded["temperature"])
    x, _, _ = marker_epochs(s01, CHECKER_CLASSES, offset=0.0, n_patches=1)
    x = x[:20, [s01.channels.index(c) for c in decoder.spec.channels]].astype(np.float64)
    p = expit(decision_scores(decoder.model.estimator, x)[:, 0] / recorded["temperature"])
    expected = decoder.model.gate.shrink(np.c_[1 - p, p], x)
    np.testing.assert_allclose(decoder.probabilities(x), expected, rtol=1e-9, atol=1e-12)


@pytest.mark.slow
def test_real_held_out_epochs_keep_their_confidence(fitted, split):
    """The noise guard does not flatten EEG: the checkerboard decoders stay confident."""
    _, (x, y) = split
    for f in fitted:
        if f.kind in ("amplitude-lr", "xdawn-tangent"):
            p = f.probabilities(x)
            assert p.max(axis=1).mean() > 0.8 and (p.argmax(1) == y).mean() > 0.85, f.kind


def test_gate_tells_eeg_from_uncorrelated_channels(checker_epochs):
    x = checker_epochs.x
    gate = TypicalityGate().fit(x[:200])
    assert gate.weight(x[200:]).mean() > 0.9
    assert gate.weight(np.random.default_rng(2).normal(size=(20, *x.shape[1:]))).max() < 0.1


@pytest.mark.parametrize("which", ["default classifier", "NeuroRVQ head"])
@pytest.mark.slow
def test_shipped_classifiers_say_nothing_on_noise_and_decode_held_out_epochs(which, s02):
    """Both shipped checker classifiers: prior on noise, confident on sub-s02's epochs; the
    default one as confident as it is right (its temperature is bounded, the head's not)."""
    from neurorvq_stream.decoders import default_decoder, expected_calibration_error
    from neurorvq_stream.decoders._metrics import mean_confidence
    from neurorvq_stream.engines import shipped_model

    path = default_decoder() if which == "default classifier" else shipped_model("classifier")
    decoder = load_decoder(path)
    held_out = s02
    x, y, _ = marker_epochs(held_out, CHECKER_CLASSES, offset=0.0, n_patches=1)
    x = x[:, [held_out.channels.index(c) for c in decoder.spec.channels]]
    noise = np.random.default_rng(3).normal(size=(20, *x.shape[1:])) * x.std(axis=(0, 2))[:, None]
    assert decoder.probabilities(noise.astype(np.float32)).max(axis=1).mean() < 0.55
    p = decoder.probabilities(x)
    accuracy = (p.argmax(1) == y).mean()
    assert mean_confidence(p) > 0.75 and accuracy > 0.75
    if which == "default classifier":
        assert abs(mean_confidence(p) - accuracy) < 0.1
        assert expected_calibration_error(p, y) < 0.1
