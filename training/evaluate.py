"""Checkerboard left vs right: NeuroRVQ heads next to classic ERP decoders, one table.

Every method sees the same epochs: the live-pipeline preprocessing and channel mapping
(``training._data``), marker-locked 1 s windows at offset 0. Columns: train on one
recording and test on the other (both directions), and stratified 5-fold cross-validation
within each recording. The NeuroRVQ rows use the shipped tokenizer-pretrained FM; the
s01 -> s02 cell of the shipped-head row is the shipped head itself (trained on sub-s01
only), every other NeuroRVQ cell fine-tunes a fresh head from the shipped FM on the
training part of that split.

Run: ``python -m training.evaluate`` (prints a markdown table).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

import numpy as np
from sklearn.metrics import balanced_accuracy_score
from sklearn.model_selection import StratifiedKFold

from ._baselines import baselines
from ._data import CHECKER_CLASSES, Recording, load_recording, marker_epochs

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


def baseline_fit_predict(name: str) -> FitPredict:
    """A FitPredict running a fresh copy of the named baseline pipeline."""
    factory = baselines()[name]

    def fit_predict(x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray) -> np.ndarray:
        return factory().fit(x_train, y_train).predict(x_test)

    return fit_predict


def checker_epochs(
    recordings: dict[str, Recording], offset: float = 0.0, n_patches: int = 1
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """(X, y) checkerboard left/right epochs per subject, cut as the live ERP window."""
    out = {}
    for subject, rec in recordings.items():
        x, y, _ = marker_epochs(rec, CHECKER_CLASSES, offset=offset, n_patches=n_patches)
        out[subject] = (x, y)
    return out


def format_table(rows: dict[str, dict[str, float]]) -> str:
    """Markdown table, one row per method, balanced accuracy in every column."""
    lines = ["| method | " + " | ".join(COLUMNS) + " |", "|---" * (len(COLUMNS) + 1) + "|"]
    for name, scores in rows.items():
        cells = " | ".join(f"{scores[c]:.3f}" if c in scores else "-" for c in COLUMNS)
        lines.append(f"| {name} | {cells} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    """Print the results table (baselines, then NeuroRVQ rows if models are given)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", type=Path, default=Path(__file__).parents[1] / "models")
    parser.add_argument("--no-neurorvq", action="store_true", help="baselines only")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    recordings = {s: load_recording(s) for s in ("s01", "s02")}
    epochs = checker_epochs(recordings)
    channels = recordings["s01"].channels
    for subject, (x, y) in epochs.items():
        print(f"sub-{subject}: {len(y)} epochs ({np.bincount(y).tolist()} left/right), "
              f"{x.shape[1]} channels")
    rows = {name: score_method(baseline_fit_predict(name), epochs, args.seed)
            for name in baselines()}
    if not args.no_neurorvq:
        from ._neurorvq_eval import neurorvq_rows

        rows |= neurorvq_rows(epochs, channels, args.models, args.seed)
    print(format_table(rows))


if __name__ == "__main__":
    main()
