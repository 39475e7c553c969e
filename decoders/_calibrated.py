"""Calibrated probabilities: a fitted decoder's scores through a fit on out-of-fold scores.

Platt scaling (a logistic regression on the decision score; multinomial on the K scores
for K classes), fitted on scores the decoder gave to epochs it was not trained on (the
cross-validation folds). A decoder that separates the classes only weakly thus gets
probabilities close to 1/K instead of its raw, over-confident ones. The calibrator is
fitted with balanced class weights: probabilities are calibrated for equal class priors,
matching the balanced accuracy the decoders are chosen by.
"""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.linear_model import LogisticRegression


def decision_scores(estimator: BaseEstimator, x: np.ndarray) -> np.ndarray:
    """(n, 1) for two classes, (n, K) otherwise: what the calibration is fitted on."""
    if hasattr(estimator, "decision_function"):
        scores = np.asarray(estimator.decision_function(x), dtype=np.float64)
    else:
        scores = np.log(np.clip(estimator.predict_proba(x), 1e-12, 1.0))
        scores = scores[:, 1:] - scores[:, :1] if scores.shape[1] == 2 else scores
    return scores.reshape(len(x), -1)


def fit_calibrator(scores: np.ndarray, y: np.ndarray) -> LogisticRegression:
    """Platt / multinomial scaling of out-of-fold ``scores`` (n, 1 or K) onto labels ``y``."""
    return LogisticRegression(C=1e4, max_iter=5000, class_weight="balanced").fit(scores, y)


def calibration_summary(calibrator: LogisticRegression) -> dict:
    """The fitted map, for the sidecar: slope(s) and intercept(s) on the decision scores."""
    return {"method": "platt" if calibrator.coef_.shape == (1, 1) else "multinomial",
            "fitted_on": "out-of-fold decision scores (cross-validation)",
            "class_weight": "balanced",
            "coef": calibrator.coef_.tolist(), "intercept": calibrator.intercept_.tolist()}


class CalibratedModel(ClassifierMixin, BaseEstimator):
    """A fitted decoder pipeline and the calibrator fitted on its out-of-fold scores."""

    def __init__(self, estimator: BaseEstimator | None = None,
                 calibrator: LogisticRegression | None = None) -> None:
        self.estimator = estimator
        self.calibrator = calibrator

    @property
    def classes_(self) -> np.ndarray:
        return self.calibrator.classes_

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        return self.calibrator.predict_proba(decision_scores(self.estimator, x))

    def predict(self, x: np.ndarray) -> np.ndarray:
        return self.classes_[self.predict_proba(x).argmax(axis=1)]
