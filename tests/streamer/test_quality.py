"""Quality checks: per-channel window flags, the arrival-rate monitor, the unit check."""

import numpy as np
import pytest

from neurorvq_stream.streamer._config import QualityConfig
from neurorvq_stream.streamer._quality import (
    ChannelFlag,
    RateMonitor,
    UnitCheck,
    assess_window,
    count_by_kind,
    flag_names,
)


def test_window_flags_flat_clipped_and_rejection() -> None:
    rng = np.random.default_rng(0)
    data = (rng.standard_normal((8, 200)) * 20).astype(np.float32)
    data[1] = 0.3  # a disconnected electrode: flat after filtering
    data[2, :10] = 500.0  # 5 % of the samples at the clip level
    data[3, :1] = 500.0  # one sample: 0.5 %, below the 1 % default
    held = np.zeros(8, np.uint8)
    held[4] = ChannelFlag.NONFINITE
    quality = QualityConfig()
    a = assess_window(data, held, quality, clip_uv=500.0)
    assert [flag_names(int(b)) for b in a.flags] == [
        (), ("flat",), ("clipped",), (), ("nonfinite",), (), (), ()]
    assert a.flagged_fraction == pytest.approx(3 / 8) and a.rejected  # above 0.25
    assert count_by_kind(a.flags) == {"nonfinite": 1, "clipped": 1, "flat": 1, "rate": 0,
                                      "unit": 0}
    lenient = QualityConfig(max_flagged_fraction=0.5)
    assert not assess_window(data, held, lenient, clip_uv=500.0).rejected


def test_rate_monitor_measures_arrivals_and_restarts_after_gaps() -> None:
    monitor = RateMonitor(expected=128.0, tolerance=0.02)
    for k in range(20):  # 256 samples a second arrive, in 0.1 s chunks
        monitor.update(26 if k % 5 else 25, now=k * 0.1)
    assert np.isnan(monitor.measured) and not monitor.mismatch  # under 3 s: no verdict yet
    for k in range(20, 61):
        monitor.update(26 if k % 5 else 25, now=k * 0.1)
    assert monitor.measured == pytest.approx(256.0, rel=0.01) and monitor.mismatch
    monitor.restart()
    assert not monitor.mismatch
    # 128 Hz as declared, but in irregular chunks of 0.5 to 1.5 s: no false alarm.
    rng = np.random.default_rng(0)
    now = 100.0
    for _ in range(20):
        step = rng.uniform(0.5, 1.5)
        now += step
        monitor.update(round(128 * step), now=now)
    assert monitor.measured == pytest.approx(128.0, rel=0.02) and not monitor.mismatch


def test_unit_check_recognises_volts_and_counts() -> None:
    rng = np.random.default_rng(1)
    eeg_uv = rng.standard_normal((1000, 16)) * 15
    check = UnitCheck(rate=250.0)
    check.update(eeg_uv[:100])
    assert check.verdict is None and np.isnan(check.typical_uv)  # 0.5 s not yet seen
    check.update(eeg_uv)
    assert check.verdict is None and 5 < check.typical_uv < 15
    volts = UnitCheck(rate=250.0)
    volts.update(eeg_uv * 1e-6)  # volts read as microvolts
    assert "volts" in volts.verdict
    counts = UnitCheck(rate=250.0)
    counts.update(eeg_uv * 1e4)
    assert "ADC counts" in counts.verdict
