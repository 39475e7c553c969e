"""Session confidence: the temperature follows the session's estimated accuracy, causally,
and changes no decision."""

from pathlib import Path

import numpy as np
import pytest
from sklearn.discriminant_analysis import LinearDiscriminantAnalysis
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer

from neurorvq_stream.decoders import default_decoder, expected_calibration_error, load_decoder
from neurorvq_stream.decoders._calibrated import (
    CalibratedModel,
    decision_scores,
    fit_calibrator,
    logits_of,
)
from neurorvq_stream.decoders._metrics import mean_confidence
from neurorvq_stream.decoders._session_confidence import (
    LABEL_PRIOR_WINDOWS,
    WARMUP_WINDOWS,
    SessionConfidence,
    fit_committee,
)
from neurorvq_stream.engines import shipped_model
from neurorvq_stream.training import marker_epochs
from neurorvq_stream.training._data import CHECKER_CLASSES


@pytest.fixture(scope="module")
def held_out(s02):
    """The shipped default decoder and held-out sub-s02's checker epochs, in recording order."""
    decoder = load_decoder(default_decoder())
    x, y, _ = marker_epochs(s02, CHECKER_CLASSES, offset=0.0, n_patches=1)
    return decoder, x[:, [s02.channels.index(c) for c in decoder.spec.channels]], y


def test_the_shipped_decoder_says_on_a_new_session_how_often_it_is_right(held_out):
    decoder, x, y = held_out
    session = decoder.session()
    assert session is not None and not session.recentre  # a live run always has one
    p = session.probabilities(x)
    static = decoder.probabilities(x)
    np.testing.assert_array_equal(p.argmax(axis=1), static.argmax(axis=1))
    accuracy = float(np.mean(p.argmax(axis=1) == y))
    assert abs(session.confidence.estimated_accuracy() - accuracy) < 0.05
    assert abs(mean_confidence(p) - accuracy) <= 0.05
    assert expected_calibration_error(p, y) <= 0.05


def test_each_window_is_tempered_by_the_windows_before_it_only(held_out):
    decoder, x, _ = held_out
    warming = decoder.session()
    warming.probabilities(x[:WARMUP_WINDOWS - 1])
    assert np.isnan(warming.confidence.estimated_accuracy())  # no estimate before the warm-up
    whole = decoder.session().probabilities(x[:60])
    # the warm-up keeps the calibration's temperature; then the session's own takes over
    np.testing.assert_allclose(whole[:WARMUP_WINDOWS], decoder.probabilities(x[:WARMUP_WINDOWS]))
    assert not np.allclose(whole[WARMUP_WINDOWS:], decoder.probabilities(x[WARMUP_WINDOWS:60]))
    np.testing.assert_allclose(decoder.session().probabilities(x[:35]), whole[:35])
    one_by_one = decoder.session()
    np.testing.assert_allclose([one_by_one.predict_proba(w) for w in x[:60]], whole)


def _flatten(x: np.ndarray) -> np.ndarray:
    return x.reshape(len(x), -1)


def _two_class_decoder(n: int, rng: np.random.Generator
                       ) -> tuple[np.ndarray, np.ndarray, CalibratedModel]:
    """``n`` windows (n, 2, 10) of alternating classes, told apart by their first channel,
    and an LDA fitted on the first 200, calibrated on the next 100, with its committee."""
    y = np.arange(n) % 2
    x = rng.normal(size=(n, 2, 10))
    x[:, 0] += (2 * y - 1)[:, None] * 1.5
    estimator = make_pipeline(FunctionTransformer(_flatten), LinearDiscriminantAnalysis())
    estimator.fit(x[:200], y[:200])
    calibrator = fit_calibrator(decision_scores(estimator, x[200:300]), y[200:300])
    return x, y, fit_committee(CalibratedModel(estimator, calibrator), x[:200], y[:200])


def test_a_decoder_that_calls_every_window_one_class_is_trusted_no_more_than_chance():
    """Copies that agree do not make a decoder right: in a paradigm of balanced classes, one
    that gives every window of a shifted session the same class is right half the time."""
    x, _, model = _two_class_decoder(300, np.random.default_rng(0))
    shifted = x[200:] + np.array([5.0, 0.0])[:, None]
    static = model.predict_proba(shifted)
    assert (static.argmax(axis=1) == 1).all() and mean_confidence(static) > 0.95
    session = SessionConfidence(model)
    p = session.probabilities(decision_scores(model.estimator, shifted), shifted)
    assert session.estimated_accuracy() == pytest.approx(0.5)
    assert mean_confidence(p[WARMUP_WINDOWS:]) == pytest.approx(0.5, abs=0.02)


def test_a_cued_session_learns_from_the_classes_its_markers_name():
    """An error every copy makes alike is invisible without labels; a cued session, whose
    markers name each trial's class, brings its confidence to how often it is right, each
    window tempered only by the classes of the windows before it."""
    rng = np.random.default_rng(1)
    x, y, model = _two_class_decoder(600, rng)
    # The new session's classes are named wrongly by the decoder on a quarter of its
    # windows, which look like any other: the copies agree there as everywhere.
    session_x, truth = x[300:], y[300:].copy()
    truth[rng.random(len(truth)) < 0.25] ^= 1
    scores = decision_scores(model.estimator, session_x)
    accuracy = float(np.mean(logits_of(scores).argmax(axis=1) == truth))
    assert accuracy < 0.8

    blind = SessionConfidence(model)
    p_blind = blind.probabilities(scores, session_x)
    cued = SessionConfidence(model)
    p = cued.probabilities(scores, session_x, truth.tolist())
    np.testing.assert_array_equal(p.argmax(axis=1), p_blind.argmax(axis=1))
    assert blind.estimated_accuracy() - accuracy > 0.15
    n = len(truth)  # every trial counts: the label-free estimate weighs as a few of them
    assert cued.estimated_accuracy() == pytest.approx(
        (accuracy * n + LABEL_PRIOR_WINDOWS * blind.estimated_accuracy())
        / (n + LABEL_PRIOR_WINDOWS))
    assert abs(cued.estimated_accuracy() - accuracy) < 0.03
    assert abs(mean_confidence(p[150:]) - accuracy) < 0.05
    assert mean_confidence(p_blind[150:]) - accuracy > 0.1

    # Causal: a window's own class changes the windows after it, never the window itself.
    flipped = truth.copy()
    flipped[40] ^= 1
    p_flipped = SessionConfidence(model).probabilities(scores, session_x, flipped.tolist())
    np.testing.assert_array_equal(p_flipped[:41], p[:41])
    assert not np.allclose(p_flipped[41], p[41])


def test_a_file_written_before_committees_keeps_its_calibration_until_labels_come(s01):
    path = Path(__file__).parents[1] / "fixtures" / "decoder_v020" / "checker.skops"
    decoder = load_decoder(path)
    assert decoder.model.committee is None
    x, y, _ = marker_epochs(s01, CHECKER_CLASSES, offset=0.0, n_patches=1)
    x, y = x[:40, [s01.channels.index(c) for c in decoder.spec.channels]], y[:40]
    blind = decoder.session()
    np.testing.assert_allclose(blind.probabilities(x), decoder.probabilities(x))
    assert np.isnan(blind.confidence.estimated_accuracy())  # nothing to estimate it from
    cued = decoder.session()
    cued.probabilities(x, y.tolist())
    assert cued.confidence.active


@pytest.mark.slow
def test_a_head_follows_a_cued_session_from_its_trials_classes(s02):
    """A NeuroRVQ head has no committee: it keeps its calibration until the markers name a
    trial's class; then the cued trials bring its confidence to how often it is right."""
    decoder = load_decoder(shipped_model("classifier"))
    spec = decoder.spec
    x, y, _ = marker_epochs(s02, decoder.class_markers, spec.marker_offset, spec.n_patches)
    x = x[:, [s02.channels.index(c) for c in spec.channels]]
    static = decoder.probabilities(x)
    blind = decoder.session()
    np.testing.assert_allclose(blind.probabilities(x), static, rtol=1e-6, atol=1e-9)
    assert np.isnan(blind.confidence.estimated_accuracy())
    p = decoder.session().probabilities(x, y.tolist())
    np.testing.assert_array_equal(p.argmax(axis=1), static.argmax(axis=1))
    accuracy = float(np.mean(p.argmax(axis=1) == y))
    assert mean_confidence(static) - accuracy > 0.1  # the held-out subject: over-confident
    assert abs(mean_confidence(p) - accuracy) <= 0.05
    assert expected_calibration_error(p, y) < expected_calibration_error(static, y) / 2
