"""The transfer tables: calibration before/after and adaptation, on a small split."""

import numpy as np
import pytest

from neurorvq_stream.training._decoder_set import LabelledEpochs, choose, fit_decoders
from neurorvq_stream.training.transfer import (
    ADAPTATION_HEADER,
    CALIBRATION_HEADER,
    TRANSFER_KINDS,
    Direction,
    adaptation_scores,
    calibration_row,
    likelihood_only,
    main,
)

# Its module-scoped fixtures are built once: every test of the module on one xdist worker.
pytestmark = [pytest.mark.xdist_group("training/test_transfer.py"), pytest.mark.slow]


@pytest.fixture(scope="module")
def direction(checker_epochs):
    """Chosen on the first 60 % of sub-s01's checker epochs, applied to the rest."""
    e, n = checker_epochs, int(0.6 * len(checker_epochs.y))
    train = LabelledEpochs(e.x[:n], e.y[:n], e.class_names, e.spec, e.class_markers)
    test = LabelledEpochs(e.x[n:], e.y[n:], e.class_names, e.spec, e.class_markers)
    chosen, _ = choose(fit_decoders(TRANSFER_KINDS, train, progress=False))
    return Direction("checker", "first", "rest", chosen, test)


def test_before_is_the_likelihood_temperature_with_the_same_decisions(direction):
    model = direction.decoder.model
    before = likelihood_only(model)
    assert before.calibrator.temperature_ == model.calibrator.likelihood_temperature_
    assert model.calibrator.temperature_ >= before.calibrator.temperature_
    x = direction.epochs.x
    np.testing.assert_array_equal(before.predict(x), model.predict(x))


def test_rows_fit_their_headers(direction):
    row = calibration_row(direction)
    assert row.count("|") == CALIBRATION_HEADER.splitlines()[0].count("|")
    assert row.startswith("| checker first -> rest | " + direction.decoder.kind)
    without, with_, ece0, ece1 = adaptation_scores(direction)
    assert all(0.0 <= v <= 1.0 for v in (without, with_, ece0, ece1))
    assert ADAPTATION_HEADER.count("\n") == 1


def test_cli_needs_a_table():
    with pytest.raises(SystemExit):
        main([])
