"""Adaptation to a new session without labels: re-centre the decoder's input, causally.

A decoder trained on one session sees the next one through a shifted lens (another cap
placement, impedances, another person): its inputs drift as a whole, while what separates
the classes changes far less. Re-centring the new session's inputs on the training ones
removes that common shift, from unlabelled windows alone (Zanini et al. 2018, "Transfer
learning: a Riemannian geometry framework with applications to brain-computer interfaces"):

- covariance decoders (a pyriemann ``TangentSpace`` inside: ``xdawn-tangent``,
  ``neurorvq+xdawn``): the tangent space is taken at the session's running Riemannian
  mean of its own (xDAWN) covariances instead of the training mean. The training
  covariances were projected at their own mean, so this maps both sessions' means to the
  same point: Riemannian re-centring, exactly;
- feature decoders (``amplitude-lr``, ``slow-potential-lda``, ``fbcsp``,
  ``neurorvq-features``): the features the final linear model sees are re-centred on a
  running mean of the session's own features: onto zero mean and unit variance where a
  ``StandardScaler`` gave the training features those, onto the training mean the LDA
  keeps (its class means weighted by the priors) otherwise;
- NeuroRVQ heads: none (their input layer is a network; re-centring it is not a linear
  step of the model). :func:`adapter` refuses them.

Causal: each window is classified with the state learnt from the windows before it, then
joins the state. Until ``warmup_windows`` windows have been seen the decoder runs as
trained (a mean of a few windows is noisier than the shift it corrects). The running means
assume the session's windows mix the classes as the training ones did (marker-locked
paradigms alternate their classes); a long run of one class pulls the mean towards it.

The adapter also tempers the probabilities to the session's estimated accuracy
(``_session_confidence``), whether or not it re-centres (``recentre``): a live run
classifies every window through one (a head's, which never re-centres, too). The
typicality gate applies as trained.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator, Sequence

import numpy as np
from pyriemann.tangentspace import TangentSpace
from sklearn.base import BaseEstimator
from sklearn.pipeline import FeatureUnion, Pipeline
from sklearn.preprocessing import StandardScaler

from ._calibrated import CalibratedModel, decision_scores
from ._protocol import check_window
from ._session_confidence import WARMUP_WINDOWS, SessionConfidence
from ._spec import WindowSpec

try:  # pyriemann >= 0.12
    from pyriemann.geometry.geodesic import geodesic_riemann
except ImportError:  # older pyriemann
    from pyriemann.utils.geodesic import geodesic_riemann

def _pipelines(estimator: BaseEstimator) -> Iterator[Pipeline]:
    """Every Pipeline inside ``estimator`` (itself included), depth first."""
    if isinstance(estimator, Pipeline):
        yield estimator
        for _, step in estimator.steps:
            yield from _pipelines(step)
    elif isinstance(estimator, FeatureUnion):
        for _, part in estimator.transformer_list:
            yield from _pipelines(part)


def _through(steps: list[tuple[str, BaseEstimator]], x: np.ndarray) -> np.ndarray:
    """``x`` through fitted transformer steps (a Pipeline slice would refuse stateless
    steps such as ``EpochAmplitudes`` as unfitted)."""
    for _, step in steps:
        x = step.transform(x)
    return x


def _tangent_spaces(estimator: BaseEstimator) -> list[tuple[Pipeline, int]]:
    """(pipeline, index) of each fitted TangentSpace step."""
    return [(p, i) for p in _pipelines(estimator) for i, (_, step) in enumerate(p.steps)
            if isinstance(step, TangentSpace)]


class Recentring:
    """One fitted estimator's decision scores with its input re-centred on the session
    (module docstring), causally; it moves a copy, never ``estimator`` itself."""

    def __init__(self, estimator: BaseEstimator, warmup_windows: int) -> None:
        if warmup_windows < 1:
            raise ValueError(f"warmup_windows must be at least 1, got {warmup_windows}.")
        self.warmup_windows = warmup_windows
        self._estimator = copy.deepcopy(estimator)
        self._spaces = _tangent_spaces(self._estimator)
        self.method = "riemannian re-centring" if self._spaces else "running standardisation"
        self._trained_refs = [p.steps[i][1].reference_ for p, i in self._spaces]
        if not self._spaces:
            self._features, self._final, self._target = _feature_stage(self._estimator)
        self.reset()

    @property
    def active(self) -> bool:
        """Whether the next window is re-centred (warm-up over)."""
        return self._n >= self.warmup_windows

    def reset(self) -> None:
        self._n = 0
        self._means: list[np.ndarray | None] = [None] * len(self._spaces)
        self._sum = self._sum_sq = 0.0

    def scores(self, x: np.ndarray) -> np.ndarray:
        """Decision scores of windows (n, C, T), one at a time; each then joins the state."""
        return self._riemannian(x) if self._spaces else self._standardised(x)

    def _riemannian(self, x: np.ndarray) -> np.ndarray:
        # The covariances each tangent space is given, for all windows at once: they do
        # not depend on the state.
        covs = [_through(p.steps[:i], x) for p, i in self._spaces]
        scores = []
        for n in range(len(x)):
            for (p, i), mean, trained in zip(self._spaces, self._means, self._trained_refs,
                                             strict=True):
                p.steps[i][1].reference_ = mean if self.active else trained
            scores.append(decision_scores(self._estimator, x[n:n + 1]))
            self._n += 1
            self._means = [c[n] if m is None else geodesic_riemann(m, c[n], 1.0 / self._n)
                           for m, c in zip(self._means, covs, strict=True)]
        return np.vstack(scores)

    def _standardised(self, x: np.ndarray) -> np.ndarray:
        z = _through(self._features, x)
        scores = []
        for raw in z:
            row = raw
            if self.active:
                mean = self._sum / self._n
                if self._target is None:  # the training features had zero mean, unit sd
                    sd = np.sqrt(np.maximum(self._sum_sq / self._n - mean**2, 1e-12))
                    row = (raw - mean) / sd
                else:
                    row = raw - mean + self._target
            scores.append(decision_scores(self._final, row[None]))
            self._n += 1
            self._sum = self._sum + raw
            self._sum_sq = self._sum_sq + raw**2
        return np.vstack(scores)


class SessionAdapter:
    """A decoder adapted to the running session (see the module docstring): re-centred
    when ``recentre``, its confidence tempered to the session either way (from the
    committee as trained: re-centring the committee too made it agree more and the
    confidence worse, README "Adaptation to the session without labels").

    Like a :class:`Decoder`: ``predict_proba(window)`` (C, T) -> (K,), ``probabilities(x)``
    for windows (n, C, T) in the order they arrived -> (n, K); each window is classified
    from the state before it, then joins the state. With a ``spec`` windows are checked
    against it. One adapter per session: ``reset()`` starts a new one.
    """

    def __init__(self, model: CalibratedModel, warmup_windows: int = WARMUP_WINDOWS,
                 spec: WindowSpec | None = None, recentre: bool = True) -> None:
        self.confidence = SessionConfidence(model, warmup_windows)
        self.spec = spec
        self.recentre = recentre
        self._model = model
        self._recentring = Recentring(model.estimator, warmup_windows) if recentre else None
        self.method = self._recentring.method if self._recentring else "none"

    @property
    def active(self) -> bool:
        """Whether the next window is classified re-centred (warm-up over)."""
        return self._recentring is not None and self._recentring.active

    def reset(self) -> None:
        """Forget the session (a new recording, another cap placement)."""
        self.confidence.reset()
        if self._recentring is not None:
            self._recentring.reset()

    def predict_proba(self, window: np.ndarray, truth: int | None = None) -> np.ndarray:
        """One window (C, T) uV -> calibrated (K,), then the window (and its class index
        ``truth``, where its marker names it) joins the state."""
        return self.probabilities(np.asarray(window)[None], [truth])[0]

    def probabilities(self, x: np.ndarray, truth: Sequence[int | None] | None = None
                      ) -> np.ndarray:
        """Probabilities (n, K) of windows (n, C, T), one at a time, causally; ``truth``
        (class index or None per window) lets the confidence learn from cued trials."""
        x = (check_window(self.spec, x) if self.spec is not None
             else np.asarray(x, dtype=np.float64))
        scores = (decision_scores(self._model.estimator, x) if self._recentring is None
                  else self._recentring.scores(x))
        p = self.confidence.probabilities(scores, x, truth)
        return p if self._model.gate is None else self._model.gate.shrink(p, x)


def _feature_stage(estimator: BaseEstimator
                   ) -> tuple[list[tuple[str, BaseEstimator]], BaseEstimator,
                              np.ndarray | None]:
    """(features, final model, training mean of the features or None for standardised)."""
    if not isinstance(estimator, Pipeline) or len(estimator.steps) < 2:
        raise ValueError("Adaptation needs a pipeline of features and a final linear model.")
    features, final = estimator.steps[:-1], estimator.steps[-1][1]
    if isinstance(estimator.steps[-2][1], StandardScaler):
        return features, final, None
    if hasattr(final, "means_") and hasattr(final, "priors_"):
        return features, final, np.asarray(final.priors_ @ final.means_, dtype=np.float64)
    raise ValueError(f"No training mean known for the features of {type(final).__name__}: "
                     "cannot re-centre them.")

