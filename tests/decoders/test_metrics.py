"""Calibration metrics: what they return on cases whose answer is known by construction."""

import math

import numpy as np
import pytest
from sklearn.metrics import balanced_accuracy_score

from neurorvq_stream.decoders import (
    accuracy_at_coverage,
    calibration_report,
    expected_calibration_error,
    reliability_bins,
)
from neurorvq_stream.decoders._metrics import (
    balanced_accuracy,
    mean_confidence,
    negative_log_likelihood,
)


def _binary(p_right: np.ndarray) -> np.ndarray:
    return np.c_[1.0 - p_right, p_right]


def test_calibrated_probabilities_have_small_ece():
    """Windows right with exactly the probability claimed: ECE near 0."""
    rng = np.random.default_rng(0)
    conf = rng.uniform(0.5, 1.0, 20000)
    correct = rng.uniform(size=conf.size) < conf
    truth = np.ones(conf.size, dtype=int)
    p = _binary(np.where(correct, conf, 1.0 - conf))
    assert expected_calibration_error(p, truth) < 0.02
    assert mean_confidence(p) == pytest.approx(np.mean(correct), abs=0.02)


def test_over_confident_decoder_is_measured_by_its_gap():
    """0.99 everywhere, right on 80 of 100: one bin, ECE = |0.80 - 0.99|."""
    truth = np.r_[np.ones(80), np.zeros(20)].astype(int)
    p = _binary(np.full(100, 0.99))
    assert expected_calibration_error(p, truth) == pytest.approx(0.19)
    report = calibration_report(p, truth)
    assert (report.accuracy, report.mean_confidence) == pytest.approx((0.8, 0.99))
    assert report.nll == pytest.approx(-(0.8 * math.log(0.99) + 0.2 * math.log(0.01)))


def test_reliability_bins_count_every_window_once():
    p = _binary(np.array([0.55, 0.6, 0.65, 0.95, 1.0, 0.0]))
    truth = np.array([1, 1, 0, 1, 1, 0])
    bins = reliability_bins(p, truth, n_bins=10)
    assert bins.count.sum() == 6 and len(bins.edges) == 11
    # 0.6 sits on an edge: the bin above; confidence 1.0 (two windows) goes to the last bin.
    assert bins.count.tolist() == [0, 0, 0, 0, 0, 1, 2, 0, 0, 3]
    assert bins.accuracy[6] == pytest.approx(0.5) and bins.confidence[6] == pytest.approx(0.625)
    assert np.isnan(bins.accuracy[0]) and np.isnan(bins.confidence[7])


def test_nll_and_balanced_accuracy():
    rng = np.random.default_rng(1)
    truth = rng.integers(0, 3, 60)
    assert negative_log_likelihood(np.full((60, 3), 1 / 3), truth) == pytest.approx(math.log(3))
    p = rng.dirichlet(np.ones(3), 60)
    assert balanced_accuracy(p, truth) == pytest.approx(
        balanced_accuracy_score(truth, p.argmax(1)))
    assert np.isfinite(negative_log_likelihood(np.eye(3)[(truth + 1) % 3], truth))


def test_coverage_keeps_the_confident_windows():
    truth = np.array([1, 1, 0, 0, 1, 0])
    p = _binary(np.array([0.95, 0.9, 0.2, 0.6, 0.4, 0.05]))
    everything, confident, nothing = accuracy_at_coverage(p, truth, [0.0, 0.8, 1.01])
    assert everything.coverage == 1.0 and everything.balanced_accuracy == pytest.approx(
        balanced_accuracy(p, truth))
    assert confident.n == 4 and confident.coverage == pytest.approx(4 / 6)
    assert confident.balanced_accuracy == 1.0
    assert nothing.n == 0 and np.isnan(nothing.balanced_accuracy)


def test_shapes_are_checked():
    with pytest.raises(ValueError, match="probabilities must be"):
        expected_calibration_error(np.ones(4), np.zeros(4, dtype=int))
