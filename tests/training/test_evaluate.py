"""The evaluation table: every decoder trained as calibrate trains it, on real epochs."""

import numpy as np
import pytest
from helpers import SMALL_CHANNELS

from neurorvq_stream.training import marker_epochs
from neurorvq_stream.training._decoder_set import LabelledEpochs
from neurorvq_stream.training._scoring import (
    BEST_CLASSICAL,
    CHOSEN,
    COLUMNS,
    format_table,
    score_task,
)
from neurorvq_stream.training.evaluate import TASKS

# Its module-scoped fixtures are built once: every test of the module on one xdist worker.
pytestmark = [pytest.mark.xdist_group("training/test_evaluate.py"), pytest.mark.slow]


@pytest.fixture(scope="module")
def epochs(s02, checker_epochs):
    """Every third checker epoch of both subjects on the small channel set."""
    x2, y2, _ = marker_epochs(s02, checker_epochs.class_names)
    x2 = x2[:, [s02.channels.index(c) for c in SMALL_CHANNELS]]
    e = checker_epochs
    return {"s01": LabelledEpochs(e.x[::3], e.y[::3], e.class_names, e.spec, e.class_markers),
            "s02": LabelledEpochs(x2[::3], y2[::3], e.class_names, e.spec, e.class_markers)}


def test_every_decoder_gets_every_column_and_the_choice_is_scored(epochs):
    kinds = ("amplitude-lr", "xdawn-tangent")
    rows = score_task(kinds, epochs, foundation_model=None, progress=False)
    for kind in kinds:
        assert set(rows[kind]) == set(COLUMNS)
        cross = [float(rows[kind][c]) for c in COLUMNS[:2]]
        cv = [float(rows[kind][c].split(" ± ")[0]) for c in COLUMNS[2:]]
        # Checkerboard left/right is a strong lateralized response: far above chance.
        assert all(0.6 < v <= 1.0 for v in cross + cv), rows[kind]
    for row in (CHOSEN, BEST_CLASSICAL):
        assert set(rows[row]) == set(COLUMNS[:2])
        assert all(cell.split(" (")[1].rstrip(")") in kinds for cell in rows[row].values())
    table = format_table(rows)
    assert table.splitlines()[0] == "| decoder | " + " | ".join(COLUMNS) + " |"
    assert f"| {CHOSEN} | " in table and rows["xdawn-tangent"][COLUMNS[0]] in table


def test_tasks_cut_their_classes_from_the_bundled_events(s01):
    by_name = {t.name: t for t in TASKS}
    assert set(by_name) == {"checker", "face-house", "press"}
    face = by_name["face-house"]
    x, y, _ = marker_epochs(s01, face.classes, face.marker_offset, face.n_patches)
    counts = np.bincount(y)
    assert list(face.classes) == ["face", "house"] and counts.min() > 380  # both pooled
    press = by_name["press"]
    assert (press.marker_offset, press.n_patches) == (-1.0, 2)
    assert press.config().preprocessing.l_freq == 0.0
    x, y, _ = marker_epochs(s01, press.classes, press.marker_offset, press.n_patches)
    assert x.shape[2] == 400 and np.bincount(y).min() > 190
