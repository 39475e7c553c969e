"""Checkerboard left vs right: NeuroRVQ heads next to classic ERP decoders, one table.

Every method sees the same epochs: the live-pipeline preprocessing and channel mapping
(``training._data``), marker-locked 1 s windows at offset 0. Columns: train on one
recording and test on the other (both directions), and stratified 5-fold cross-validation
within each recording. The NeuroRVQ rows use the shipped tokenizer-pretrained FM; the
s01 -> s02 cell of the shipped-head row is the shipped head itself (trained on sub-s01
only), every other NeuroRVQ cell fine-tunes a fresh head from the shipped FM on the
training part of that split.

Run: ``python -m neurorvq_stream.training.evaluate`` (prints a markdown table).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from neurorvq_stream.engines import shipped_model

from ._baselines import baselines
from ._data import CHECKER_CLASSES, PreprocessedRecording, load_preprocessed, marker_epochs
from ._neurorvq_eval import neurorvq_rows
from ._scoring import COLUMNS, FitPredict, score_method


def baseline_fit_predict(name: str) -> FitPredict:
    """A FitPredict running a fresh copy of the named baseline pipeline."""
    factory = baselines()[name]

    def fit_predict(x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray) -> np.ndarray:
        return factory().fit(x_train, y_train).predict(x_test)

    return fit_predict


def checker_epochs(
    recordings: dict[str, PreprocessedRecording], offset: float = 0.0, n_patches: int = 1
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
    parser.add_argument("--foundation-model", type=Path, default=shipped_model("foundation"),
                        help="FM to tune heads on (default: the shipped one)")
    parser.add_argument("--classifier", type=Path, default=shipped_model("classifier"),
                        help="head to score s01 -> s02 (default: the shipped one)")
    parser.add_argument("--no-neurorvq", action="store_true", help="baselines only")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    recordings = {s: load_preprocessed(s) for s in ("s01", "s02")}
    epochs = checker_epochs(recordings)
    channels = recordings["s01"].channels
    for subject, (x, y) in epochs.items():
        print(f"sub-{subject}: {len(y)} epochs ({np.bincount(y).tolist()} left/right), "
              f"{x.shape[1]} channels")
    rows = {name: score_method(baseline_fit_predict(name), epochs, args.seed)
            for name in baselines()}
    if not args.no_neurorvq:
        rows |= neurorvq_rows(epochs, channels, args.foundation_model, args.classifier,
                              args.seed)
    print(format_table(rows))


if __name__ == "__main__":
    main()
