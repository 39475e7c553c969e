"""NeuroRVQ rows of the evaluation table (see ``training.evaluate``)."""

from __future__ import annotations

import copy
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from sklearn.metrics import balanced_accuracy_score

from neurorvq_stream.engines import build_foundation_model, load_classifier

from ._finetune import HEAD_RECIPE, FinetuneConfig, epoch_features, finetune_head
from ._scoring import COLUMNS, score_method


def neurorvq_rows(
    epochs: dict[str, tuple[np.ndarray, np.ndarray]], channels: Sequence[str],
    fm_path: Path | None, head_path: Path | None, seed: int = 0,
) -> dict[str, dict[str, float]]:
    """The head (s01 -> s02 only) and FM + head-only tuning in every column."""
    rows: dict[str, dict[str, float]] = {}
    if head_path is not None and head_path.is_file():
        clf = load_classifier(head_path)
        x2, y2 = epochs["s02"]
        predicted = clf.probabilities(x2, list(channels)).argmax(1)
        rows["NeuroRVQ small, shipped head (trained on s01)"] = {
            COLUMNS[0]: float(balanced_accuracy_score(y2, predicted))
        }
    if fm_path is not None and fm_path.is_file():
        base = build_foundation_model(fm_path, n_out=1, pretraining_heads=False)
        features = {s: epoch_features(base, x, channels) for s, (x, _) in epochs.items()}
        index = {s: np.arange(len(y)) for s, (_, y) in epochs.items()}
        # Feature rows stand in for epochs: score_method only indexes and splits them.
        lookup = {s: (index[s] + (0 if s == "s01" else len(index["s01"])), y)
                  for s, (_, y) in epochs.items()}
        table = torch.cat([features["s01"], features["s02"]])

        def fit_predict(rows_train: np.ndarray, y_train: np.ndarray,
                        rows_test: np.ndarray) -> np.ndarray:
            head = copy.deepcopy(base)
            finetune_head(head, table[rows_train], y_train, 2,
                          FinetuneConfig(**{**HEAD_RECIPE.as_dict(), "seed": seed}),
                          progress=False)
            with torch.no_grad():
                logits = head.head(head.fc_norm(table[rows_test]))
            return (logits[:, 0] > 0).long().numpy()

        rows["NeuroRVQ small FM, head-only tuning"] = score_method(fit_predict, lookup, seed)
    return rows
