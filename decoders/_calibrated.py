"""Calibrated probabilities: a fitted decoder's scores through a fit on out-of-fold scores.

Temperature scaling (Guo et al. 2017): probabilities are ``softmax(scores / T)`` (for two
classes ``sigmoid(score / T)``). One scale and no offset, so the most probable class stays
the decoder's own (balanced) decision: a Platt fit with an intercept was tried first and,
with perfectly separated folds, moved the threshold anywhere in the gap between the
classes (xDAWN s01 -> s02 fell from 0.860 to 0.837).

``T`` is the larger (the less confident) of two:

- the temperature that best predicts the out-of-fold labels (class-balanced
  log-likelihood, ``scipy.optimize``): a weak decoder gets probabilities near 1/K;
- the temperature at which the mean out-of-fold confidence equals the one-sided 95 %
  lower bound of the out-of-fold accuracy (Clopper-Pearson, ``scipy.stats``). When the
  folds separate perfectly the likelihood alone runs ``T`` to zero and every window to
  0.99+, a certainty 395 epochs of one session cannot give: 395 of 395 right only shows
  an accuracy above 0.992. The bound turns the evidence the folds hold into the
  confidence they support.

Measured on the six cross-subject directions of the bundled tasks
(``benchmarks/bench_calibration.py``), against the likelihood alone, time-blocked folds,
and a transfer discount or a temperature floor chosen leave-one-task-out: the bound is
the best of the options that can be fitted at calibration time, lowered the expected
calibration error in every direction, and has no parameter to tune (the 90 % and 99 %
levels give nearly the same errors). Folds inside one session still say nothing
of how far the next session differs, so a decoder that transfers badly stays
over-confident (README, "Decoders and calibration").
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import brentq, minimize_scalar
from scipy.special import log_softmax, softmax
from scipy.stats import binomtest
from sklearn.base import BaseEstimator, ClassifierMixin

from ._typicality import TypicalityGate


def decision_scores(estimator: BaseEstimator, x: np.ndarray) -> np.ndarray:
    """(n, 1) for two classes, (n, K) otherwise: what the calibration is fitted on."""
    if hasattr(estimator, "decision_function"):
        scores = np.asarray(estimator.decision_function(x), dtype=np.float64)
    else:
        scores = np.log(np.clip(estimator.predict_proba(x), 1e-12, 1.0))
        scores = scores[:, 1:] - scores[:, :1] if scores.shape[1] == 2 else scores
    return scores.reshape(len(x), -1)


def logits_of(scores: np.ndarray) -> np.ndarray:
    """Two-class scores (n, 1) as logits [0, s]; K-class scores as they are."""
    return np.hstack([np.zeros_like(scores), scores]) if scores.shape[1] == 1 else scores


#: One-sided level of the lower bound on the out-of-fold accuracy (Clopper-Pearson).
ACCURACY_BOUND_LEVEL = 0.95


def accuracy_lower_bound(n_correct: int, n: int, level: float = ACCURACY_BOUND_LEVEL) -> float:
    """One-sided ``level`` lower confidence bound of an accuracy (Clopper-Pearson)."""
    return float(binomtest(n_correct, n).proportion_ci(2.0 * level - 1.0, "exact").low)


def _mean_confidence(logits: np.ndarray, temperature: float) -> float:
    return float(softmax(logits / temperature, axis=1).max(axis=1).mean())


class TemperatureScaling(BaseEstimator):
    """``softmax(scores / T)``: ``T`` fitted on out-of-fold scores, never more confident
    than the lower bound of their accuracy allows (module docstring).

    ``temperature_`` is what predicts; ``likelihood_temperature_``,
    ``bound_temperature_`` and ``accuracy_bound_`` say how it was chosen (files written
    before the bound have only ``temperature_``).
    """

    @classmethod
    def fixed(cls, temperature: float, n_classes: int) -> TemperatureScaling:
        """A calibrator of a known temperature (a head's calibration is in its logits: 1)."""
        calibrator = cls()
        calibrator.temperature_, calibrator.classes_ = float(temperature), np.arange(n_classes)
        return calibrator

    def fit(self, scores: np.ndarray, y: np.ndarray) -> TemperatureScaling:
        logits = logits_of(np.asarray(scores, dtype=np.float64))
        y = np.asarray(y)
        spread = float(np.std(logits)) or 1.0
        self.likelihood_temperature_ = spread * np.exp(_likelihood_log_t(logits / spread, y))
        n_correct = int(np.sum(logits.argmax(axis=1) == y))
        self.accuracy_bound_ = accuracy_lower_bound(n_correct, len(y))
        self.bound_temperature_ = temperature_at_confidence(logits, self.accuracy_bound_)
        self.temperature_ = float(max(self.likelihood_temperature_, self.bound_temperature_))
        self.classes_ = np.arange(logits.shape[1])
        return self

    def predict_proba(self, scores: np.ndarray) -> np.ndarray:
        return softmax(logits_of(np.asarray(scores, dtype=np.float64)) / self.temperature_,
                       axis=1)


# log T between -7 and 7 times the scores' spread: separable folds reach the lower end
# (confident), folds at chance the upper end (probabilities ~1/K).
_LOG_T_RANGE = (-7.0, 7.0)


def _likelihood_log_t(logits: np.ndarray, y: np.ndarray) -> float:
    """log T of the best class-balanced log-likelihood of ``y``."""
    counts = np.bincount(y, minlength=logits.shape[1]).astype(np.float64)
    weights = (len(y) / (logits.shape[1] * np.maximum(counts, 1)))[y]

    def loss(log_t: float) -> float:
        ll = log_softmax(logits / np.exp(log_t), axis=1)[np.arange(len(y)), y]
        return -float(np.sum(weights * ll) / np.sum(weights))

    return float(minimize_scalar(loss, bounds=_LOG_T_RANGE, method="bounded").x)


def temperature_at_confidence(logits: np.ndarray, target: float) -> float:
    """The temperature at which the mean top probability of ``logits`` (n, K) is ``target``
    (searched over the range the fits use, relative to the logits' spread)."""
    spread = float(np.std(logits)) or 1.0
    return spread * float(np.exp(_log_t_at_confidence(logits / spread, target)))


def _log_t_at_confidence(logits: np.ndarray, target: float) -> float:
    """log T at which the mean top probability is ``target`` (it falls as T grows)."""
    lo, hi = _LOG_T_RANGE

    def excess(log_t: float) -> float:
        return _mean_confidence(logits, np.exp(log_t)) - target

    if excess(lo) <= 0.0:  # even the most confident T stays below the target
        return lo
    if excess(hi) >= 0.0:
        return hi
    return float(brentq(excess, lo, hi, xtol=1e-6))


def fit_calibrator(scores: np.ndarray, y: np.ndarray) -> TemperatureScaling:
    """Bounded temperature scaling of out-of-fold ``scores`` (n, 1 or K) onto labels ``y``."""
    return TemperatureScaling().fit(scores, y)


def calibration_summary(calibrator: TemperatureScaling) -> dict:
    """The fitted map, for the sidecar."""
    return {"method": "temperature", "temperature": calibrator.temperature_,
            "chosen_as": "the larger of the out-of-fold likelihood's and the one that "
                         "gives the out-of-fold accuracy's one-sided "
                         f"{ACCURACY_BOUND_LEVEL:.0%} lower bound as mean confidence",
            "likelihood_temperature": calibrator.likelihood_temperature_,
            "bound_temperature": calibrator.bound_temperature_,
            "accuracy_lower_bound": calibrator.accuracy_bound_,
            "fitted_on": "out-of-fold decision scores (cross-validation)",
            "class_weight": "balanced"}


class CalibratedModel(ClassifierMixin, BaseEstimator):
    """A fitted decoder pipeline, the calibrator fitted on its out-of-fold scores, and the
    gate that draws windows unlike the training ones towards the prior (``_typicality``).

    ``committee`` (copies fitted on halves of the epochs) and ``class_shares`` (the
    training classes' shares) let a session estimate its own accuracy
    (``_session_confidence``); files written before them have neither.
    """

    # What a file written before committees reads as (skops restores the attributes saved).
    committee: list[BaseEstimator] | None = None
    class_shares: np.ndarray | None = None

    def __init__(self, estimator: BaseEstimator | None = None,
                 calibrator: TemperatureScaling | None = None,
                 gate: TypicalityGate | None = None,
                 committee: list[BaseEstimator] | None = None,
                 class_shares: np.ndarray | None = None) -> None:
        self.estimator = estimator
        self.calibrator = calibrator
        self.gate = gate
        self.committee = committee
        self.class_shares = class_shares

    @property
    def classes_(self) -> np.ndarray:
        return self.calibrator.classes_

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        p = self.calibrator.predict_proba(decision_scores(self.estimator, x))
        return p if self.gate is None else self.gate.shrink(p, x)

    def predict(self, x: np.ndarray) -> np.ndarray:
        return self.classes_[self.predict_proba(x).argmax(axis=1)]
