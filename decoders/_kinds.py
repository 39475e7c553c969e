"""The decoder kinds: one strong decoder per paradigm, each built from its library.

- evoked responses (time-domain shape): ``amplitude-lr`` (binned amplitudes + logistic
  regression), ``xdawn-tangent`` (xDAWN covariances + tangent space, pyriemann);
- slow cortical potentials (shifts over seconds; use a spec without high-pass):
  ``slow-potential-lda`` (0.2 s bins against the window's start + shrinkage LDA);
- oscillations (band power, e.g. eyes open/closed, motor imagery): ``fbcsp`` (filter-bank
  CSP log-power in the mu and beta bands, pyriemann + shrinkage LDA). A pyriemann tangent space
  of band-passed covariances was tried too and dropped: with 74 channels its Riemannian
  means took minutes per fold here, too slow for a calibration run;
- the NeuroRVQ foundation model: ``neurorvq-head`` / ``neurorvq-head-full`` (its own
  classification head, fine-tuned in ``training``), ``neurorvq-features`` (its pooled
  features + logistic regression) and ``neurorvq+xdawn`` (those features next to the
  xDAWN tangent-space ones).

Every scikit-learn kind ends in a linear model whose decision scores are calibrated on
cross-validation folds (``training``), so none needs ``predict_proba`` of its own.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sklearn.base import BaseEstimator
from sklearn.discriminant_analysis import LinearDiscriminantAnalysis
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline, make_union
from sklearn.preprocessing import StandardScaler

from ._features import BandPass, EpochAmplitudes, FoundationFeatures

# Mu (alpha) and beta: the bands of sensorimotor rhythms and of eyes open/closed.
BANDS = ((8.0, 13.0), (13.0, 30.0))


@dataclass(frozen=True)
class DecoderKind:
    """A decoder kind: what it is for and how to build a fresh, unfitted estimator.

    ``build`` is None for the NeuroRVQ heads, which ``training`` fine-tunes as networks;
    ``uses_foundation_model`` kinds are built around a :class:`FoundationFeatures`.
    """

    name: str
    paradigm: str
    summary: str
    build: Callable[[FoundationFeatures | None], BaseEstimator] | None
    uses_foundation_model: bool = False


def _shrinkage_lda() -> LinearDiscriminantAnalysis:
    return LinearDiscriminantAnalysis(solver="lsqr", shrinkage="auto")


def _logreg(c: float = 1.0) -> LogisticRegression:
    return LogisticRegression(C=c, max_iter=2000, class_weight="balanced")


def _xdawn_tangent() -> Pipeline:
    from pyriemann.estimation import XdawnCovariances
    from pyriemann.tangentspace import TangentSpace

    return make_pipeline(XdawnCovariances(nfilter=4, estimator="oas"),
                         TangentSpace(metric="riemann"))


def _band_csp(band: tuple[float, float]) -> Pipeline:
    # pyriemann's CSP on shrunk per-epoch covariances: the same log-power features as
    # mne.decoding.CSP(reg="ledoit_wolf"), which took 30 s per fit on 74 channels here.
    from pyriemann.estimation import Covariances
    from pyriemann.spatialfilters import CSP

    return make_pipeline(BandPass(*band), Covariances(estimator="oas"),
                         CSP(nfilter=4, log=True))


def _needs(features: FoundationFeatures | None) -> FoundationFeatures:
    if features is None:
        raise ValueError("This decoder kind reads NeuroRVQ features: give a foundation model.")
    return features


KINDS: dict[str, DecoderKind] = {k.name: k for k in (
    DecoderKind("amplitude-lr", "evoked",
                "binned amplitudes (50 ms, common average) + logistic regression",
                lambda _: make_pipeline(EpochAmplitudes(bin_s=0.05), StandardScaler(),
                                        _logreg(0.01))),
    DecoderKind("xdawn-tangent", "evoked",
                "xDAWN covariances + tangent space + logistic regression (pyriemann)",
                lambda _: make_pipeline(_xdawn_tangent(), _logreg())),
    DecoderKind("slow-potential-lda", "slow potential",
                "0.2 s amplitude bins against the window's first 0.2 s + shrinkage LDA",
                lambda _: make_pipeline(EpochAmplitudes(bin_s=0.2, baseline_s=0.2),
                                        _shrinkage_lda())),
    DecoderKind("fbcsp", "oscillatory",
                "filter-bank CSP log-power (mu, beta; pyriemann) + shrinkage LDA",
                lambda _: make_pipeline(make_union(*[_band_csp(b) for b in BANDS]),
                                        _shrinkage_lda())),
    DecoderKind("neurorvq-head", "foundation model",
                "NeuroRVQ foundation model, head-only fine-tuning (published recipe)", None,
                uses_foundation_model=True),
    DecoderKind("neurorvq-head-full", "foundation model",
                "NeuroRVQ foundation model, full fine-tuning (published recipe)", None,
                uses_foundation_model=True),
    DecoderKind("neurorvq-features", "foundation model",
                "NeuroRVQ pooled features + logistic regression",
                lambda f: make_pipeline(_needs(f), StandardScaler(), _logreg(0.01)),
                uses_foundation_model=True),
    DecoderKind("neurorvq+xdawn", "combined",
                "NeuroRVQ pooled features next to xDAWN tangent space + logistic regression",
                lambda f: make_pipeline(make_union(_needs(f), _xdawn_tangent()),
                                        StandardScaler(), _logreg(0.01)),
                uses_foundation_model=True),
)}
HEAD_KINDS = ("neurorvq-head", "neurorvq-head-full")
CLASSICAL_KINDS = tuple(k.name for k in KINDS.values() if not k.uses_foundation_model)
