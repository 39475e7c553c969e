"""The evaluation table: baselines and NeuroRVQ rows on the same real epochs."""

import numpy as np
import pytest

from neurorvq_stream.engines import NeuroRVQConfig, save_checkpoint
from neurorvq_stream.training import load_preprocessed, new_foundation_model, new_tokenizer
from neurorvq_stream.training._neurorvq_eval import neurorvq_rows
from neurorvq_stream.training._scoring import COLUMNS, score_method
from neurorvq_stream.training.evaluate import baseline_fit_predict, checker_epochs, format_table

CHANNELS = ("cz", "pz", "oz", "o1", "o2", "po7", "po8", "p7", "p8", "fz")


@pytest.fixture(scope="module")
def epochs(s01):
    recordings = {"s01": s01, "s02": load_preprocessed("s02")}
    full = checker_epochs(recordings)
    cols = {s: [r.channels.index(c) for c in CHANNELS] for s, r in recordings.items()}
    return {s: (x[:, cols[s]], y) for s, (x, y) in full.items()}


def test_logistic_regression_baseline_scores_in_every_column(epochs):
    scores = score_method(baseline_fit_predict("LogReg (avg-ref, 50-500 ms, /10)"), epochs)
    assert set(scores) == set(COLUMNS)
    # Checkerboard left/right is a strong lateralized ERP: well above chance everywhere.
    assert all(0.6 < v <= 1.0 for v in scores.values()), scores
    table = format_table({"LogReg": scores})
    assert table.splitlines()[0].startswith("| method |") and f"{scores[COLUMNS[0]]:.3f}" in table


def test_neurorvq_rows_fit_heads_on_frozen_features(epochs, tmp_path):
    tiny = NeuroRVQConfig(depth_encoder=1, depth_decoder=1, n_code=32, code_dim=8,
                          layer_scale=False)
    fm = new_foundation_model(new_tokenizer(tiny), depth=1, seed=0)
    fm_path = save_checkpoint(fm, tmp_path / "fm.safetensors")
    small = {s: (x[::3], y[::3]) for s, (x, y) in epochs.items()}
    rows = neurorvq_rows(small, CHANNELS, fm_path, head_path=None)
    (name, scores), = rows.items()  # no head given: only the FM row
    assert "head-only" in name and set(scores) == set(COLUMNS)
    assert all(0.0 <= v <= 1.0 for v in scores.values())
    assert np.mean(list(scores.values())) > 0.55, scores
