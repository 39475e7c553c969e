"""Confidence that follows the running session: a temperature set from its estimated accuracy.

A temperature fitted when the decoder is calibrated knows only the calibration session:
folds inside one session cannot show how much worse the next one will be, so a decoder
that transfers badly stays over-confident (README, "Decoders and calibration"). Most
windows of a new session carry no label, but two facts about its accuracy can be read
from them:

- **Disagreement of a committee.** ``calibrate`` fits ``COMMITTEE_SIZE`` copies of the
  decoder, each on a random half of the epochs of each class. On new data their mean
  pairwise disagreement tracks the decoder's error rate (Jiang et al. 2022, "Assessing
  generalization of SGD via disagreement"; Baek et al. 2022, "Agreement-on-the-line"): where
  the session is unlike the training one, copies trained on different halves part ways.
- **Class balance.** A decoder that gives class k to a share ``q_k`` of the windows, in a
  paradigm whose classes come in shares ``p_k`` (those of the training epochs), is right
  on at most ``sum_k min(q_k, p_k)`` of them: one that calls every window "face" in a
  balanced face/house task is right half of the time at best, however its copies agree.

The label-free estimate is the smaller of ``1 - disagreement`` and that bound (at least
chance, 1/K). Both miss an error every copy makes alike (press s01 -> s02: copies agree on
77 % of the windows, the decoder is right on 64 %); a cued session can do better, because
its markers name each trial's class. Once a trial's class is known, whether the decoder
was right on it counts too: with ``n`` such trials, ``h`` of them right, the estimate is
``(h + LABEL_PRIOR_WINDOWS x label-free) / (n + LABEL_PRIOR_WINDOWS)``, so it moves from
the label-free estimate towards the session's measured accuracy as trials come. Each
window gets the temperature at which the mean top probability of the session's windows
before it equals the estimate; a window's own class joins only after its probabilities.
Causal, like the adapter: the first ``warmup_windows`` windows keep the calibration-time
temperature. A decoder without a committee (a NeuroRVQ head, a file written by 0.2.0)
keeps it until a trial's class is known: its label-free estimate is the calibration's
own confidence, which only labels move. Only the scale changes, so no decision changes.
Measured on the six cross-subject directions of the bundled tasks
(``benchmarks/bench_calibration.py``, README table).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence

import numpy as np
from scipy.special import softmax
from sklearn.base import clone
from sklearn.model_selection import StratifiedShuffleSplit

from ._calibrated import CalibratedModel, decision_scores, logits_of, temperature_at_confidence

#: Copies of the decoder in a committee (each fitted on half of the epochs).
COMMITTEE_SIZE = 8
#: Windows seen before the session's own temperature replaces the calibration-time one.
WARMUP_WINDOWS = 20
#: Most recent windows the estimate and the temperature are computed from (bounds the work
#: per window in a long run, and follows a session that drifts).
HISTORY_WINDOWS = 1000
#: How many scored trials the label-free estimate weighs as (module docstring).
LABEL_PRIOR_WINDOWS = 20


def fit_committee(model: CalibratedModel, x: np.ndarray, y: np.ndarray,
                  size: int = COMMITTEE_SIZE, seed: int = 0) -> CalibratedModel:
    """``model`` with a committee: ``size`` copies of its decoder, each fitted on a random
    half of every class's epochs, and the classes' shares of ``y``."""
    if size < 2:
        raise ValueError(f"A committee needs at least 2 copies, got {size}.")
    halves = StratifiedShuffleSplit(n_splits=size, train_size=0.5, random_state=seed)
    committee = [clone(model.estimator).fit(x[rows], y[rows]) for rows, _ in halves.split(x, y)]
    shares = np.bincount(y, minlength=len(model.classes_)) / len(y)
    return CalibratedModel(model.estimator, model.calibrator, model.gate, committee, shares)


def _disagreement(votes: np.ndarray) -> np.ndarray:
    """Per window, the share of committee pairs that vote differently (votes: (n, m))."""
    m = votes.shape[1]
    counts = np.stack([(votes == k).sum(axis=1) for k in np.unique(votes)], axis=1)
    agreeing = (counts * (counts - 1)).sum(axis=1) / 2
    return 1.0 - agreeing / (m * (m - 1) / 2)


class SessionConfidence:
    """The calibrated probabilities of one session's windows, in arrival order (module
    docstring). ``reset()`` starts a new session."""

    def __init__(self, model: CalibratedModel, warmup_windows: int = WARMUP_WINDOWS) -> None:
        if warmup_windows < 1:
            raise ValueError(f"warmup_windows must be at least 1, got {warmup_windows}.")
        self.warmup_windows = warmup_windows
        self._model = model
        self.reset()

    @property
    def active(self) -> bool:
        """Whether the session's own temperature applies to the next window: after the
        warm-up, with a committee or once a trial's class is known."""
        return ((bool(self._model.committee) or bool(self._hits))
                and len(self._logits) >= self.warmup_windows)

    def reset(self) -> None:
        self._logits: deque[np.ndarray] = deque(maxlen=HISTORY_WINDOWS)
        self._disagreement: deque[float] = deque(maxlen=HISTORY_WINDOWS)
        self._hits: deque[bool] = deque(maxlen=HISTORY_WINDOWS)  # trials of known class

    def estimated_accuracy(self) -> float:
        """The session's accuracy as estimated from its windows so far: nan before the
        warm-up, or without a committee before a trial's class is known (the one place that
        rule lives: the live status and the closed loop's offline run read this)."""
        if not self.active:
            return float("nan")
        return self._estimate(np.stack(self._logits))

    def _estimate(self, logits: np.ndarray) -> float:
        """The estimate from the kept windows' ``logits`` (n, K), their disagreement and
        the trials scored."""
        return ((sum(self._hits) + LABEL_PRIOR_WINDOWS * self._label_free(logits))
                / (len(self._hits) + LABEL_PRIOR_WINDOWS))

    def _label_free(self, logits: np.ndarray) -> float:
        """The committee's estimate; without one (a NeuroRVQ head, a 0.2.0 file) the
        calibration-time confidence of these windows, which labels alone can move."""
        if not self._model.committee:
            calibration = softmax(logits / self._model.calibrator.temperature_, axis=1)
            return float(calibration.max(axis=1).mean())
        k = logits.shape[1]
        given = np.bincount(logits.argmax(axis=1), minlength=k) / len(logits)
        balance = float(np.minimum(given, self._model.class_shares).sum())
        agreement = 1.0 - float(np.mean(self._disagreement))
        return max(min(agreement, balance), 1.0 / k)

    def probabilities(self, scores: np.ndarray, x: np.ndarray,
                      truth: Sequence[int | None] | None = None) -> np.ndarray:
        """Probabilities (n, K) of the decision ``scores`` of windows ``x`` (n, C, T); each
        window is tempered from the windows before it, then joins them. ``truth`` gives
        each window's class index where its marker names it (None where not)."""
        logits = logits_of(np.asarray(scores, dtype=np.float64))
        truth = [None] * len(logits) if truth is None else truth
        committee = self._model.committee or []
        disagreement = (_disagreement(np.stack(
            [logits_of(decision_scores(member, x)).argmax(axis=1) for member in committee],
            axis=1)) if committee else np.zeros(len(x)))
        out = []
        for row, parted, known in zip(logits, disagreement, truth, strict=True):
            out.append(softmax(row / self.temperature(), axis=0))
            self._logits.append(row)
            self._disagreement.append(float(parted))
            if known is not None:
                self._hits.append(int(row.argmax()) == known)
        return np.stack(out)

    def temperature(self) -> float:
        """The temperature of the next window."""
        if not self.active:
            return float(self._model.calibrator.temperature_)
        logits = np.stack(self._logits)  # once per window: the estimate reads the same rows
        return temperature_at_confidence(logits, self._estimate(logits))
