"""One scoring protocol for every decoder of the results table: cross-subject and 5-fold CV.

A method is a ``FitPredict``: train on (X, y), predict labels of other X. Columns: train
on one recording and test on the other (both directions), and stratified 5-fold
cross-validation within each recording.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from sklearn.metrics import balanced_accuracy_score
from sklearn.model_selection import StratifiedKFold

FitPredict = Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]
COLUMNS = ("s01 -> s02", "s02 -> s01", "CV s01 (5-fold)", "CV s02 (5-fold)")


def _cv_score(fit_predict: FitPredict, x: np.ndarray, y: np.ndarray, seed: int) -> float:
    folds = StratifiedKFold(n_splits=5, shuffle=True, random_state=seed)
    scores = [
        balanced_accuracy_score(y[test], fit_predict(x[train], y[train], x[test]))
        for train, test in folds.split(x, y)
    ]
    return float(np.mean(scores))


def score_method(
    fit_predict: FitPredict, epochs: dict[str, tuple[np.ndarray, np.ndarray]], seed: int = 0
) -> dict[str, float]:
    """Balanced accuracy of one method in every column of the table."""
    (x1, y1), (x2, y2) = epochs["s01"], epochs["s02"]
    return {
        COLUMNS[0]: float(balanced_accuracy_score(y2, fit_predict(x1, y1, x2))),
        COLUMNS[1]: float(balanced_accuracy_score(y1, fit_predict(x2, y2, x1))),
        COLUMNS[2]: _cv_score(fit_predict, x1, y1, seed),
        COLUMNS[3]: _cv_score(fit_predict, x2, y2, seed),
    }
