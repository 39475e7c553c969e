"""One scoring protocol for every decoder of the results table: cross-subject and 5-fold CV.

Each decoder is trained exactly as ``calibrate`` trains it (``fit_decoders``: folds,
out-of-fold calibration, final fit) on one recording; its cross-validation scores fill
that recording's CV column and its calibrated predictions on the other recording fill
the cross-subject column. The "chosen by CV" row is what ``calibrate`` would have saved
from the training recording alone, scored on the held-out one.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from sklearn.metrics import balanced_accuracy_score

from neurorvq_stream.decoders._kinds import CLASSICAL_KINDS

from ._decoder_set import LabelledEpochs, choose, fit_decoders

SUBJECTS = ("s01", "s02")
COLUMNS = ("s01 -> s02", "s02 -> s01", "CV s01 (5-fold)", "CV s02 (5-fold)")
CHOSEN = "chosen by CV (what calibrate saves)"
BEST_CLASSICAL = "best classical on the held-out subject"


def cross_column(train: str, test: str) -> str:
    return f"{train} -> {test}"


def cv_column(subject: str) -> str:
    return f"CV {subject} (5-fold)"


def held_out_score(fitted_probabilities: np.ndarray, y: np.ndarray) -> float:
    return float(balanced_accuracy_score(y, fitted_probabilities.argmax(axis=1)))


def score_task(
    kinds: Sequence[str], epochs: dict[str, LabelledEpochs], foundation_model: Path | None,
    seed: int = 0, progress: bool = True,
) -> dict[str, dict[str, str]]:
    """Row (decoder kind, then the chosen one) -> column -> formatted cell."""
    rows: dict[str, dict[str, str]] = {k: {} for k in (*kinds, CHOSEN, BEST_CLASSICAL)}
    for train, test in (SUBJECTS, SUBJECTS[::-1]):
        fitted = fit_decoders(kinds, epochs[train], foundation_model, seed, progress)
        held_out = {f.kind: held_out_score(f.probabilities(epochs[test].x), epochs[test].y)
                    for f in fitted}
        for f in fitted:
            s = f.scores
            rows[f.kind][cv_column(train)] = f"{s['cv_mean']:.3f} ± {s['cv_std']:.3f}"
            rows[f.kind][cross_column(train, test)] = f"{held_out[f.kind]:.3f}"
        chosen, _ = choose(fitted)
        rows[CHOSEN][cross_column(train, test)] = f"{held_out[chosen.kind]:.3f} ({chosen.kind})"
        classical = {k: v for k, v in held_out.items() if k in CLASSICAL_KINDS}
        if classical:
            best = max(classical, key=classical.__getitem__)
            rows[BEST_CLASSICAL][cross_column(train, test)] = f"{classical[best]:.3f} ({best})"
    return rows


def format_table(rows: dict[str, dict[str, str]]) -> str:
    """Markdown table, one row per decoder, balanced accuracy in every column."""
    lines = ["| decoder | " + " | ".join(COLUMNS) + " |", "|---" * (len(COLUMNS) + 1) + "|"]
    for name, cells in rows.items():
        lines.append(f"| {name} | " + " | ".join(cells.get(c, "-") for c in COLUMNS) + " |")
    return "\n".join(lines)
