"""The closed-loop replay computes, window for window, what the offline evaluation does."""

import numpy as np
import pytest

from neurorvq_stream._closed_loop import run_checker_closed_loop
from neurorvq_stream.decoders._session_confidence import WARMUP_WINDOWS

pytestmark = pytest.mark.slow


@pytest.mark.parametrize(("adapt", "seconds"), [
    (False, 40.0),  # 10 checkerboard markers
    # Re-centred on the session: enough trials for the adapter to act after its warm-up.
    (True, 90.0),
])
def test_live_predictions_match_offline_window_for_window(adapt, seconds):
    report = run_checker_closed_loop(speed=1.0, tmax=seconds, quiet=True, adapt=adapt)

    # Every trial classified, as offline (a rejected window would say why in the summary).
    assert (report.windows_dropped, report.windows_rejected) == (0, 0), report.summary()
    assert len(report.offline_marker_times) >= 8
    assert len(report.live) == len(report.offline_marker_times)
    if adapt:
        assert len(report.live) > WARMUP_WINDOWS + 5
    for window in report.live:
        k = int(np.argmin(np.abs(report.offline_marker_times - window.marker_time)))
        # Marker times read back through a second inlet carry its own clock-offset estimate
        # (about 1 ms here): pair within one 200 Hz sample; the window content must match
        # to float32 / ONNX Runtime rounding.
        assert abs(report.offline_marker_times[k] - window.marker_time) < 5e-3
        np.testing.assert_allclose(window.probabilities, report.offline_probabilities[k],
                                   atol=1e-4)
    assert report.live_accuracy == report.offline_accuracy
    # The session's own estimate of its accuracy, from the same windows (within one vote).
    np.testing.assert_allclose(report.live_estimated_accuracy,
                               report.offline_estimated_accuracy, atol=0.01)
    assert np.isnan(report.live_estimated_accuracy) == (len(report.live) < WARMUP_WINDOWS)
    assert report.coverage == 1.0  # no decision threshold: every trial decided
