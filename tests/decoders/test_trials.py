"""The trial scorer's running counts give what scoring every trial again gives."""

import warnings

import numpy as np
import pytest
from sklearn.metrics import balanced_accuracy_score

from neurorvq_stream.decoders import REJECTED, UNDECIDED, TrialScorer
from neurorvq_stream.decoders._metrics import balanced_accuracy

NAMES = ("left", "right", "rest")
MARKERS = {c: (f"stim-{c}",) for c in NAMES}


def _sklearn(truth: list[int], decided: list[int]) -> float:
    with warnings.catch_warnings():  # a class decided before any trial of it was shown
        warnings.simplefilter("ignore", UserWarning)
        return float(balanced_accuracy_score(truth, decided))


def test_running_counts_match_every_trial_scored_again():
    rng = np.random.default_rng(3)
    scorer = TrialScorer(NAMES, MARKERS)
    assert np.isnan(scorer.balanced_accuracy()) and np.isnan(scorer.coverage())
    truth, decided = [], []
    for k in range(80):
        label = int(rng.integers(0, 2 if k < 20 else 3))  # "rest" trials only later
        p = rng.dirichlet(np.ones(3))
        decision = NAMES[int(np.argmax(p))] if k % 5 else (UNDECIDED, REJECTED)[k % 2]
        assert scorer.add(f"stim-{NAMES[label]}", float(k), decision, p) is not None
        if decision in NAMES:
            truth.append(label)
            decided.append(NAMES.index(decision))
        assert len(scorer.trials) == k + 1 and len(scorer.decided) == len(decided)
        assert scorer.coverage() == len(decided) / (k + 1)
        if decided:
            assert scorer.balanced_accuracy() == pytest.approx(_sklearn(truth, decided))
        else:
            assert np.isnan(scorer.balanced_accuracy())
    assert scorer.add("stim-other", 80.0, "left", p) is None  # no trial of the classes
    assert scorer.add(None, None, "left", p) is None  # a sliding window
    # Given its trials at once, a scorer counts them as if they had come one by one.
    again = TrialScorer(NAMES, MARKERS, trials=list(scorer.trials))
    assert again.balanced_accuracy() == scorer.balanced_accuracy()
    assert again.decided == scorer.decided and again.coverage() == scorer.coverage()
    np.testing.assert_array_equal(again.confusion(), scorer.confusion())
    # The batch metric is the same definition: the same decisions give the very same float
    # (the closed loop compares its live and offline scores with ==).
    assert balanced_accuracy(np.eye(3)[decided], np.asarray(truth)) == scorer.balanced_accuracy()
