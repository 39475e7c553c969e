"""Well-known ERP decoders, run on exactly the epochs the NeuroRVQ head sees.

They put the NeuroRVQ numbers in context: if a plain logistic regression beats the
foundation model on an epoch set, the table must say so.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from pyriemann.estimation import XdawnCovariances
from pyriemann.spatialfilters import Xdawn
from pyriemann.tangentspace import TangentSpace
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.discriminant_analysis import LinearDiscriminantAnalysis
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler

from neurorvq_stream.engines import MODEL_RATE


class AverageReferenceDecimate(BaseEstimator, TransformerMixin):
    """Average reference, keep ``tmin``..``tmax`` s of the epoch, decimate, flatten."""

    def __init__(self, tmin: float = 0.05, tmax: float = 0.5, step: int = 10) -> None:
        self.tmin, self.tmax, self.step = tmin, tmax, step

    def fit(self, x: np.ndarray, y: np.ndarray | None = None) -> AverageReferenceDecimate:
        return self

    def transform(self, x: np.ndarray) -> np.ndarray:
        x = x - x.mean(axis=1, keepdims=True)
        x = x[:, :, round(self.tmin * MODEL_RATE) : round(self.tmax * MODEL_RATE)]
        # Mean over each decimation block (a boxcar anti-alias) rather than plain picking.
        n = x.shape[2] // self.step * self.step
        x = x[:, :, :n].reshape(*x.shape[:2], -1, self.step).mean(axis=3)
        return x.reshape(len(x), -1)


class _Xdawn2D(BaseEstimator, TransformerMixin):
    """xDAWN spatial filters, flattened to vectors for LDA."""

    def __init__(self, nfilter: int = 4) -> None:
        self.nfilter = nfilter

    def fit(self, x: np.ndarray, y: np.ndarray) -> _Xdawn2D:
        self.xdawn_ = Xdawn(nfilter=self.nfilter).fit(x.astype(np.float64), y)
        return self

    def transform(self, x: np.ndarray) -> np.ndarray:
        out = self.xdawn_.transform(x.astype(np.float64))
        out = out - out.mean(axis=2, keepdims=True)
        n = out.shape[2] // 10 * 10
        return out[:, :, :n].reshape(*out.shape[:2], -1, 10).mean(axis=3).reshape(len(out), -1)


def baselines() -> dict[str, Callable[[], Pipeline]]:
    """Name -> factory of a fresh, unfitted scikit-learn pipeline taking (n, C, T) epochs."""
    return {
        "LogReg (avg-ref, 50-500 ms, /10)": lambda: make_pipeline(
            AverageReferenceDecimate(),
            StandardScaler(),
            LogisticRegression(C=0.01, max_iter=2000, class_weight="balanced"),
        ),
        "xDAWN + LDA": lambda: make_pipeline(
            _Xdawn2D(nfilter=4), LinearDiscriminantAnalysis(solver="lsqr", shrinkage="auto")
        ),
        "xDAWN cov + tangent space + LogReg": lambda: make_pipeline(
            XdawnCovariances(nfilter=4, estimator="oas"),
            TangentSpace(metric="riemann"),
            LogisticRegression(max_iter=2000, class_weight="balanced"),
        ),
    }
