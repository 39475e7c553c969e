"""Offline data = what the live pipeline computes: preprocessing, mapping, epoch cutting."""

import mne
import numpy as np
import pytest

from neurorvq_stream.engines import ELECTRODES
from neurorvq_stream.streamer import bundled_recording
from neurorvq_stream.streamer._datasets import bundled_events
from neurorvq_stream.streamer._preprocessing import Preprocessor
from neurorvq_stream.training import marker_epochs
from neurorvq_stream.training._data import (
    CHECKER_CLASSES,
    continuous_windows,
    preprocess_continuous,
    read_events,
)


def test_recording_is_mapped_by_position_without_duplicates(s01):
    assert len(s01.channels) == len(set(s01.channels)) >= 60
    assert set(s01.channels) <= set(ELECTRODES)
    assert all(src[0] in "ABCD" for src in s01.source_channels)
    # 10-20 landmarks of a 128-channel cap must be found.
    assert {"cz", "oz", "fz", "pz", "o1", "o2"} <= set(s01.channels)
    assert s01.data.dtype == np.float32 and np.isfinite(s01.data).all()
    assert np.abs(s01.data).max() <= 500.0


def test_events_tsv_agrees_with_edf_annotations():
    raw = mne.io.read_raw_edf(bundled_recording("s01"), preload=False, verbose="error")
    rows = [row for row in read_events(bundled_events("s01")) if row[1] in CHECKER_CLASSES]
    ann = [(o, d) for o, d in zip(raw.annotations.onset, raw.annotations.description,
                                  strict=True) if d in CHECKER_CLASSES]
    assert [d for _, d in rows] == [d for _, d in ann]
    np.testing.assert_allclose([o for o, _ in rows], [o for o, _ in ann], atol=1 / 256)


def test_offline_output_equals_one_shot_preprocessing_and_time_mapping(s01):
    raw = mne.io.read_raw_edf(bundled_recording("s01"), preload=True, verbose="error")
    raw.crop(0, 30)
    x = raw.get_data(picks=list(s01.source_channels[:4]), units="uV").T
    chunked, times = preprocess_continuous(x, 256.0)
    whole = Preprocessor(256.0, 4).process(x, np.arange(len(x)) / 256.0)
    np.testing.assert_array_equal(chunked, whole.data)
    np.testing.assert_allclose(times, whole.times)
    np.testing.assert_allclose(times, np.arange(len(times)) / 200.0, atol=1e-9)
    np.testing.assert_allclose(chunked, s01.data[: len(chunked), :4], atol=1e-4)


def test_marker_epochs_start_at_the_marker_sample(s01):
    x, y, onsets = marker_epochs(s01, CHECKER_CLASSES, offset=0.1, n_patches=2)
    assert x.shape[1:] == (len(s01.channels), 400)
    counts = np.bincount(y)
    assert len(counts) == 2 and counts.min() > 150
    for k in (0, len(x) // 2, len(x) - 1):
        start = int(np.argmin(np.abs(s01.times - (onsets[k] + 0.1))))
        np.testing.assert_array_equal(x[k], s01.data[start : start + 400].T)


def test_unknown_class_and_impossible_window_are_clear_errors(s01):
    with pytest.raises(ValueError, match="never occur"):
        marker_epochs(s01, ("checker-up",))
    with pytest.raises(ValueError, match="No 4-patch window"):
        continuous_windows(s01, n_patches=4, start_s=100.0, stop_s=102.0)
    with pytest.raises(ValueError, match="Unknown subject"):
        bundled_recording("s03")
