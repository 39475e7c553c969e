"""How far a decoder's probabilities can be trusted: calibration and accuracy metrics.

Pure numpy, for the calibration table, the session report's reliability
diagram, the display and the closed loop. Every function takes ``probabilities`` (n, K)
(rows sum to 1, column k the class index k) and ``truth`` (n,) class indices. The
confidence of a window is its top probability and its decision the most probable class
(the decoder's own rule). Calibration is judged on windows the decoder never saw: a
perfectly calibrated decoder is right on 80 % of the windows it gives 0.8.

Balanced accuracy has one definition here (:func:`balanced_accuracy_of_counts`), used by
batches of windows and by ``TrialScorer``'s running counts alike, so a live score and an
offline one over the same decisions are the very same float.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def _checked(probabilities: np.ndarray, truth: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    p = np.asarray(probabilities, dtype=np.float64)
    y = np.asarray(truth)
    if p.ndim != 2 or len(p) != len(y):
        raise ValueError(f"probabilities must be (n, K) for n={len(y)} labels, "
                         f"got {p.shape}.")
    return p, y.astype(np.int64)


def confidence(probabilities: np.ndarray) -> np.ndarray:
    """Each window's top probability (n,): what the decoder claims for its decision."""
    return np.asarray(probabilities, dtype=np.float64).max(axis=1)


def mean_confidence(probabilities: np.ndarray) -> float:
    """Mean top probability: for a calibrated decoder, its expected accuracy."""
    return float(confidence(probabilities).mean())


def accuracy(probabilities: np.ndarray, truth: np.ndarray) -> float:
    """Share of windows whose most probable class is the true one (what confidence
    promises; compare it with :func:`mean_confidence`)."""
    p, y = _checked(probabilities, truth)
    return float(np.mean(p.argmax(axis=1) == y))


def balanced_accuracy_of_counts(hits: np.ndarray, shown: np.ndarray) -> float:
    """Mean per-class recall from per-class counts: ``hits[k]`` of the ``shown[k]`` decided
    trials of class k were decided right. Classes never shown are left out, as in
    ``sklearn.metrics.balanced_accuracy_score``; nan before any trial. Counts can be kept
    as trials come, so a running score costs O(classes), not O(trials)."""
    seen = shown > 0
    return float(np.mean(hits[seen] / shown[seen])) if seen.any() else float("nan")


def balanced_accuracy(probabilities: np.ndarray, truth: np.ndarray) -> float:
    """Mean per-class recall of the most probable class (chance 1/K whatever the class mix)."""
    p, y = _checked(probabilities, truth)
    n = max(p.shape[1], int(y.max(initial=-1)) + 1)
    hits = np.bincount(y[p.argmax(axis=1) == y], minlength=n)
    return balanced_accuracy_of_counts(hits, np.bincount(y, minlength=n))


def negative_log_likelihood(probabilities: np.ndarray, truth: np.ndarray,
                            eps: float = 1e-12) -> float:
    """Mean ``-log p(true class)`` (nats); ``ln K`` for the prior, unbounded for a
    confident mistake (``eps`` keeps a zero probability finite)."""
    p, y = _checked(probabilities, truth)
    return float(-np.mean(np.log(np.clip(p[np.arange(len(y)), y], eps, 1.0))))


@dataclass(frozen=True)
class ReliabilityBins:
    """Windows grouped by confidence into equal-width bins over [0, 1] (a reliability
    diagram): per bin its edges, the windows in it, their mean confidence and accuracy
    (NaN for an empty bin)."""

    edges: np.ndarray  # (n_bins + 1,)
    count: np.ndarray  # (n_bins,)
    confidence: np.ndarray  # (n_bins,)
    accuracy: np.ndarray  # (n_bins,)


def reliability_bins(probabilities: np.ndarray, truth: np.ndarray,
                     n_bins: int = 10) -> ReliabilityBins:
    """Confidence against accuracy in ``n_bins`` equal-width confidence bins.

    Bins cover [0, 1] (the lower ones stay empty: confidence is at least 1/K); a window
    on an edge goes to the bin above it, confidence 1 to the last bin.
    """
    p, y = _checked(probabilities, truth)
    conf = p.max(axis=1)
    correct = (p.argmax(axis=1) == y).astype(np.float64)
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    index = np.clip(np.floor(conf * n_bins).astype(np.int64), 0, n_bins - 1)
    count = np.bincount(index, minlength=n_bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_conf = np.bincount(index, conf, n_bins) / count
        acc = np.bincount(index, correct, n_bins) / count
    return ReliabilityBins(edges, count, mean_conf, acc)


def expected_calibration_error(probabilities: np.ndarray, truth: np.ndarray,
                               n_bins: int = 10) -> float:
    """ECE (Guo et al. 2017): the windows' share-weighted mean of |accuracy - confidence|
    over ``n_bins`` equal-width confidence bins. 0 is calibrated; an over-confident
    decoder at 0.99 that is right 86 % of the time scores about 0.13."""
    bins = reliability_bins(probabilities, truth, n_bins)
    full = bins.count > 0
    gaps = np.abs(bins.accuracy[full] - bins.confidence[full])
    return float(np.sum(bins.count[full] * gaps) / np.sum(bins.count))


@dataclass(frozen=True)
class Coverage:
    """What a confidence threshold keeps: the share of windows whose top probability
    reaches it and the balanced accuracy of those (NaN when none or one class is kept)."""

    threshold: float
    coverage: float
    balanced_accuracy: float
    n: int


def accuracy_at_coverage(probabilities: np.ndarray, truth: np.ndarray,
                         thresholds: np.ndarray | list[float] | float) -> list[Coverage]:
    """For each confidence threshold: how many windows a closed loop acting only on
    ``confidence >= threshold`` would act on, and how well. Calibrated probabilities make
    the kept windows' accuracy rise with the threshold."""
    p, y = _checked(probabilities, truth)
    conf = p.max(axis=1)
    rows = []
    for t in np.atleast_1d(np.asarray(thresholds, dtype=np.float64)):
        keep = conf >= t
        score = (balanced_accuracy(p[keep], y[keep]) if len(np.unique(y[keep])) > 1
                 else float("nan"))
        rows.append(Coverage(float(t), float(keep.mean()) if len(y) else float("nan"),
                             score, int(keep.sum())))
    return rows


@dataclass(frozen=True)
class CalibrationReport:
    """The numbers a calibration table shows for one decoder on one set of windows."""

    n: int
    balanced_accuracy: float
    accuracy: float
    mean_confidence: float
    ece: float
    nll: float

    def as_dict(self) -> dict[str, float]:
        return {"n": self.n, "balanced_accuracy": self.balanced_accuracy,
                "accuracy": self.accuracy, "mean_confidence": self.mean_confidence,
                "ece": self.ece, "nll": self.nll}


def calibration_report(probabilities: np.ndarray, truth: np.ndarray,
                       n_bins: int = 10) -> CalibrationReport:
    """Balanced accuracy, accuracy, mean confidence, ECE and NLL in one pass."""
    p, y = _checked(probabilities, truth)
    return CalibrationReport(len(y), balanced_accuracy(p, y), accuracy(p, y),
                             mean_confidence(p), expected_calibration_error(p, y, n_bins),
                             negative_log_likelihood(p, y))
