"""Decisions scored against the trials they answer: one scorer for every place that scores.

A marker-locked window answers the trial its marker opened; the pipeline publishes, with
each decision, the marker's label and time (the ``Decisions`` outlet, ``WindowResult``), so
pairing a decision with its trial needs no time heuristic. The display, the session report
and the closed loop all feed :class:`TrialScorer` and read the same numbers from it:
balanced accuracy of the decided trials, coverage (the share of trials decided under a
confidence threshold) and the calibration of the probabilities.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from ._metrics import balanced_accuracy_of_counts

#: The decision of a window whose calibrated confidence missed the run's threshold.
UNDECIDED = "undecided"
#: The decision of a window with too many flagged channels to be classified.
REJECTED = "rejected"


@dataclass(frozen=True)
class ScoredTrial:
    """One trial: its marker, its true class, what was decided and with which probabilities."""

    marker_time: float
    marker: str
    truth: int
    decision: str
    probabilities: np.ndarray


@dataclass
class TrialScorer:
    """Pairs decisions with the classes of the trials they answer, and scores them.

    ``class_markers`` maps each class to the marker labels that open its trials (a
    decoder's ``class_markers``); decisions on windows locked to other markers, or on
    sliding windows, are not trials of these classes and are left out. Hits and decided
    trials per class are counted as trials come (through :meth:`add`), so the inference
    thread reads the running balanced accuracy and coverage at O(classes) per window.
    """

    class_names: tuple[str, ...]
    class_markers: Mapping[str, Sequence[str]]
    trials: list[ScoredTrial] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.class_names = tuple(self.class_names)
        self._truth = {m: self.class_names.index(c)
                       for c, markers in self.class_markers.items() for m in markers}
        self._decided: list[ScoredTrial] = []
        self._hits = np.zeros(len(self.class_names), dtype=np.int64)
        self._shown = np.zeros(len(self.class_names), dtype=np.int64)
        given, self.trials = self.trials, []
        for trial in given:
            self._keep(trial)

    def add(self, marker: str | None, marker_time: float | None, decision: str,
            probabilities: np.ndarray | None) -> ScoredTrial | None:
        """Score one decision; None when it answers no trial of the classes."""
        if marker is None or marker not in self._truth or marker_time is None:
            return None
        p = (np.full(len(self.class_names), np.nan) if probabilities is None
             else np.asarray(probabilities, dtype=np.float64))
        trial = ScoredTrial(float(marker_time), marker, self._truth[marker], decision, p)
        self._keep(trial)
        return trial

    def _keep(self, trial: ScoredTrial) -> None:
        """Append ``trial`` and count it in the running counts."""
        self.trials.append(trial)
        if trial.decision in self.class_names:
            self._decided.append(trial)
            self._shown[trial.truth] += 1
            self._hits[trial.truth] += trial.decision == self.class_names[trial.truth]

    @property
    def decided(self) -> list[ScoredTrial]:
        """Trials that got a class (not undecided, not rejected), kept as they come."""
        return self._decided

    def coverage(self) -> float:
        """The share of trials that got a class."""
        return len(self._decided) / len(self.trials) if self.trials else float("nan")

    def balanced_accuracy(self) -> float:
        """Mean per-class recall over the decided trials (classes with trials; nan before
        any), from the running counts (``balanced_accuracy_of_counts``)."""
        return balanced_accuracy_of_counts(self._hits, self._shown)

    def confusion(self) -> np.ndarray:
        """(true class, decided class) counts of the decided trials."""
        k = len(self.class_names)
        counts = np.zeros((k, k), dtype=int)
        for t in self.decided:
            counts[t.truth, self.class_names.index(t.decision)] += 1
        return counts

    def probabilities(self) -> tuple[np.ndarray, np.ndarray]:
        """Probabilities (n, K) and true classes (n,) of every classified trial (rejected
        ones have none), for calibration measures."""
        rows = [t for t in self.trials if t.decision != REJECTED]
        if not rows:
            return np.empty((0, len(self.class_names))), np.empty(0, dtype=int)
        return (np.stack([t.probabilities for t in rows]),
                np.asarray([t.truth for t in rows], dtype=int))

    def summary(self) -> str:
        """One line: trials, coverage, balanced accuracy of the decided ones."""
        if not self.trials:
            return "no trial of the classes scored"
        return (f"{len(self.trials)} trials, {len(self.decided)} decided (coverage "
                f"{self.coverage():.2f}), balanced accuracy {self.balanced_accuracy():.3f}")


def decide(probabilities: np.ndarray, class_names: Sequence[str],
           min_confidence: float) -> str:
    """The class whose calibrated probability is highest, if it reaches ``min_confidence``,
    else :data:`UNDECIDED` (a closed loop acts only on decisions it can trust)."""
    k = int(np.argmax(probabilities))
    return class_names[k] if probabilities[k] >= min_confidence else UNDECIDED
