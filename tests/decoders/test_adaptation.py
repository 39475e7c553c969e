"""Session adaptation: causal, label-free, and it undoes a shift of the whole session."""

import numpy as np
import pytest
from pyriemann.geometry.distance import distance_riemann
from pyriemann.geometry.mean import mean_riemann

from neurorvq_stream.decoders import KINDS, DecoderError, SessionAdapter
from neurorvq_stream.decoders._calibrated import CalibratedModel, decision_scores, fit_calibrator
from neurorvq_stream.decoders._decoders import HeadDecoder, SklearnDecoder
from neurorvq_stream.decoders._features import FoundationFeatures
from neurorvq_stream.decoders._metrics import balanced_accuracy
from neurorvq_stream.training._decoder_set import LabelledEpochs, fit_decoders

# Its module-scoped fixtures are built once: every test of the module on one xdist worker.
pytestmark = [pytest.mark.xdist_group("decoders/test_adaptation.py"), pytest.mark.slow]

WARMUP = 20


@pytest.fixture(scope="module")
def split(checker_epochs):
    """First 60 % of sub-s01's checker epochs to train on, the rest as the 'session'."""
    e, n = checker_epochs, int(0.6 * len(checker_epochs.y))
    return (LabelledEpochs(e.x[:n], e.y[:n], e.class_names, e.spec, e.class_markers),
            e.x[n:].astype(np.float64), e.y[n:])


@pytest.fixture(scope="module")
def models(split):
    kinds = ["xdawn-tangent", "amplitude-lr", "slow-potential-lda"]
    return {f.kind: f.model for f in fit_decoders(kinds, split[0], progress=False)}


@pytest.mark.parametrize("kind", ["xdawn-tangent", "amplitude-lr", "slow-potential-lda"])
def test_causal_and_as_trained_during_warmup(kind, models, split):
    _, x, _ = split
    model = models[kind]
    whole = SessionAdapter(model, WARMUP).probabilities(x)
    # A window's probabilities depend only on the windows before it.
    np.testing.assert_allclose(SessionAdapter(model, WARMUP).probabilities(x[:50]), whole[:50])
    one_by_one = SessionAdapter(model, WARMUP)
    np.testing.assert_allclose([one_by_one.predict_proba(w) for w in x[:30]], whole[:30])
    assert one_by_one.active
    np.testing.assert_allclose(whole[:WARMUP], model.predict_proba(x[:WARMUP]))
    one_by_one.reset()
    assert not one_by_one.active
    np.testing.assert_allclose(one_by_one.probabilities(x[:WARMUP]), whole[:WARMUP])
    # The adapter moves a copy: the model itself predicts as before.
    np.testing.assert_allclose(model.predict_proba(x[:5]), whole[:5])


@pytest.fixture(scope="module")
def mixed(split):
    """The session's channels mixed, as by another cap placement."""
    _, x, _ = split
    mixing = np.eye(x.shape[1]) + np.random.default_rng(0).normal(
        size=(x.shape[1],) * 2) / np.sqrt(x.shape[1])
    return np.einsum("ij,njt->nit", mixing, x)


def test_xdawn_reference_is_the_sessions_riemannian_mean(models, mixed):
    adapter = SessionAdapter(models["xdawn-tangent"], WARMUP)
    assert adapter.method == "riemannian re-centring"
    adapter.probabilities(mixed)
    (pipeline, i), = adapter._recentring._spaces
    session_mean = mean_riemann(pipeline[:i].transform(mixed))
    trained = models["xdawn-tangent"].estimator[0][1].reference_
    assert distance_riemann(adapter._recentring._means[0], session_mean) < 0.1 * distance_riemann(
        trained, session_mean)


def test_recentring_undoes_a_mixed_cap(models, mixed, split):
    """Re-centring gives back part of what the mixing cost (0.76 -> 0.88 measured)."""
    _, _, y = split
    model = models["xdawn-tangent"]
    plain = balanced_accuracy(model.predict_proba(mixed)[WARMUP:], y[WARMUP:])
    adapted = balanced_accuracy(SessionAdapter(model, WARMUP).probabilities(mixed)[WARMUP:],
                                y[WARMUP:])
    assert adapted > plain + 0.05


def test_standardisation_undoes_a_drift(models, split):
    """A slow drift added to every window: the feature decoders get their accuracy back."""
    _, x, y = split
    ramp = np.linspace(0.0, 1.0, x.shape[2])
    drift = x + np.random.default_rng(1).normal(0, 20, x.shape[1])[None, :, None] * ramp
    for kind in ("slow-potential-lda", "amplitude-lr"):
        model = models[kind]
        adapter = SessionAdapter(model, WARMUP)
        assert adapter.method == "running standardisation"
        clean = balanced_accuracy(model.predict_proba(x)[WARMUP:], y[WARMUP:])
        adapted = balanced_accuracy(adapter.probabilities(drift)[WARMUP:], y[WARMUP:])
        assert adapted > balanced_accuracy(model.predict_proba(drift)[WARMUP:], y[WARMUP:])
        assert adapted > clean - 0.03, kind


def test_decoder_level_api(models, split, checker_epochs):
    train, x, _ = split
    decoder = SklearnDecoder("xdawn-tangent", train.class_names, train.spec,
                             models["xdawn-tangent"])
    adapter = decoder.adapter(warmup_windows=5)
    assert adapter.predict_proba(x[0]).shape == (2,)
    with pytest.raises(ValueError, match="channels"):
        adapter.predict_proba(x[0, :3])
    with pytest.raises(ValueError, match="warmup_windows"):
        decoder.adapter(warmup_windows=0)
    head = HeadDecoder("neurorvq-head", train.class_names, train.spec, path=None,
                       engine=object())
    with pytest.raises(DecoderError, match="no session adaptation"):
        head.adapter()


@pytest.mark.parametrize("kind", ["fbcsp", "neurorvq-features", "neurorvq+xdawn"])
def test_every_scikit_learn_kind_has_an_adapter(kind, split, tiny_foundation_model):
    """The other kinds: the right method, probabilities, as trained during the warm-up."""
    train, x, _ = split
    every_other = LabelledEpochs(train.x[::2], train.y[::2], train.class_names, train.spec,
                                 train.class_markers)
    features = FoundationFeatures.from_checkpoint(str(tiny_foundation_model),
                                                  train.spec.channels)
    model = KINDS[kind].build(features).fit(every_other.x.astype(np.float64), every_other.y)
    calibrated = CalibratedModel(model, fit_calibrator(
        decision_scores(model, every_other.x.astype(np.float64)), every_other.y))
    adapter = SessionAdapter(calibrated, warmup_windows=5)
    assert adapter.method == ("riemannian re-centring" if "xdawn" in kind
                              else "running standardisation")
    p = adapter.probabilities(x[:12])
    np.testing.assert_allclose(p.sum(axis=1), 1.0)
    # (the NeuroRVQ features of one window and of a batch differ in float32 rounding)
    np.testing.assert_allclose(p[:5], calibrated.predict_proba(x[:5]), atol=1e-6)
