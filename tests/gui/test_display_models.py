"""The display's numpy models: scrolling buffer, token usage, predictions, decimation."""

import importlib.util
from pathlib import Path

import mne
import numpy as np
import pytest
from sklearn.metrics import balanced_accuracy_score

from neurorvq_stream.gui._models import (
    PredictionHistory,
    SignalBuffer,
    TokenUsage,
    class_probabilities,
)
from neurorvq_stream.gui._signals import peak_decimate
from neurorvq_stream.gui._tokens import ALL_LEVELS, token_image
from neurorvq_stream.streamer._results import WindowResult

# Its module-scoped fixtures are built once: every test of the module on one xdist worker.
pytestmark = pytest.mark.xdist_group("gui/test_display_models.py")

RATE = 200.0
WINDOW = 800  # 4 patches
HOP = 100  # 0.5 s


@pytest.fixture(scope="module")
def eeg() -> np.ndarray:
    """40 s of 8 real BioSemi channels at 200 Hz, in microvolts."""
    spec = importlib.util.find_spec("pylossless")
    if spec is None or spec.origin is None:
        pytest.skip("pylossless (bundled EEG recordings) is not installed")
    path = Path(spec.origin).parent / "assets/test_data/sub-s01/eeg/sub-s01_task-faceO_eeg.edf"
    raw = mne.io.read_raw_edf(path, preload=True, verbose=False)
    raw.pick(raw.ch_names[:8]).crop(10.0, 50.0).resample(RATE, verbose=False)
    return (raw.get_data() * 1e6).astype(np.float32)


def window(data: np.ndarray, end: int, index: int = 0, t0: float = 1000.0, **extra):
    """The pipeline's window ending at sample ``end`` (exclusive), stamped like the runner."""
    names = tuple(f"ch{k}" for k in range(data.shape[0]))
    return WindowResult(
        index=index,
        t_last=t0 + (end - 1) / RATE,
        channels=names,
        source_channels=names,
        signal=data[:, end - WINDOW : end],
        n_patches=WINDOW // 200,
        **extra,
    )


def test_overlapping_windows_rebuild_the_continuous_signal(eeg):
    buffer = SignalBuffer(duration_s=10.0)
    ends = range(WINDOW, eeg.shape[1] + 1, HOP)
    for k, end in enumerate(ends):
        buffer.add(window(eeg, end, k, reconstruction=eeg[:, end - WINDOW : end] * 0.5))
        if k == 0:
            assert np.isnan(buffer.signal[:, : buffer.n_samples - WINDOW]).all()
    last = list(ends)[-1]
    np.testing.assert_array_equal(buffer.signal, eeg[:, last - buffer.n_samples : last])
    np.testing.assert_allclose(buffer.reconstruction, buffer.signal * 0.5, rtol=1e-6)
    assert buffer.times()[-1] == 0.0
    assert buffer.times()[0] == pytest.approx(-(buffer.n_samples - 1) / RATE)


def test_a_gap_is_shown_as_nan_and_duplicates_are_ignored(eeg):
    buffer = SignalBuffer(duration_s=10.0)
    buffer.add(window(eeg, 2000, 0))
    before = buffer.signal.copy()
    buffer.add(window(eeg, 2000, 1))  # same window again
    np.testing.assert_array_equal(buffer.signal, before)
    missing = 300
    buffer.add(window(eeg, 2000 + WINDOW + missing, 2, gap=True))
    tail = buffer.signal[:, -(WINDOW + missing + 1) :]
    assert np.isnan(tail[:, 1 : missing + 1]).all()
    assert np.isfinite(tail[:, missing + 1 :]).all()
    assert np.isfinite(tail[:, 0]).all()
    # no reconstruction was given: that trace stays empty instead of showing stale data
    assert np.isnan(buffer.reconstruction).all()


def test_markers_are_deduplicated_and_expire(eeg):
    buffer = SignalBuffer(duration_s=5.0)
    marker = (1000.0 + 3.0, "face")
    for k, end in enumerate(range(WINDOW, 1400, HOP)):
        buffer.add(window(eeg, end, k, markers=(marker,)))
    assert buffer.markers() == [(pytest.approx(marker[0] - buffer.t_end), "face")]
    buffer.add(window(eeg, 3000, 99))  # t_end = 1015 s: the marker left the 5 s view
    assert buffer.markers() == []


def test_new_channels_reset_the_buffer_and_bad_shapes_are_refused(eeg):
    buffer = SignalBuffer()
    buffer.add(window(eeg, WINDOW))
    fewer = eeg[:4]
    buffer.add(window(fewer, 2 * WINDOW, 1))
    assert buffer.channels == ("ch0", "ch1", "ch2", "ch3")
    assert np.isfinite(buffer.signal).sum() == 4 * WINDOW
    names = tuple(f"ch{k}" for k in range(8))
    broken = WindowResult(0, 0.0, names, names, eeg[:3, :WINDOW], 4)
    with pytest.raises(ValueError, match="8 channels"):
        buffer.add(broken)
    with pytest.raises(ValueError, match="reconstruction shape"):
        buffer.add(window(eeg, 3 * WINDOW, 2, reconstruction=eeg[:, :10]))


def test_token_usage_counts_distinct_codes_over_the_time_window():
    rng = np.random.default_rng(3)
    usage = TokenUsage(window_s=10.0)
    batches = [rng.integers(0, 50 + 10 * k, size=(4, 8, 40)) for k in range(6)]
    for k, tokens in enumerate(batches):
        usage.add(1000.0 + 4.0 * k, tokens)
    kept = batches[-3:]  # t = 1012, 1016, 1020 are within 10 s of 1020
    expected = [
        len(set(np.concatenate([t[b, lv] for t in kept]).tolist()))
        for b in range(4)
        for lv in range(8)
    ]
    np.testing.assert_array_equal(usage.distinct_counts(), expected)
    with pytest.raises(ValueError, match="branches, levels"):
        usage.add(1021.0, np.zeros((8, 40), dtype=np.int64))


def test_balanced_accuracy_of_decided_trials_matches_scikit_learn():
    rng = np.random.default_rng(5)
    names = ("left", "right", "rest")
    history = PredictionHistory()
    truth, predicted = [], []
    for k in range(60):
        probs = rng.dirichlet(np.ones(3))
        label = names[int(rng.integers(0, 2 if k < 40 else 3))]
        # One window in six is below the run's decision threshold: not scored as decided.
        decision = names[int(np.argmax(probs))] if k % 6 else "undecided"
        history.add(
            WindowResult(
                k,
                float(k),
                ("cz",),
                ("Cz",),
                np.zeros((1, 200)),
                1,
                probabilities=probs,
                class_names=names,
                label=f"stim-{label}",
                marker_time=k - 0.5,
                truth=label,
                decision=decision,
            )
        )
        if decision != "undecided":
            truth.append(label)
            predicted.append(decision)
    assert history.balanced_accuracy() == pytest.approx(balanced_accuracy_score(truth, predicted))
    assert history.n_labelled() == 50
    assert history.scorer.coverage() == pytest.approx(50 / 60)


def test_binary_heads_read_as_two_classes_and_mismatches_are_refused():
    one = WindowResult(0, 0.0, ("cz",), ("Cz",), np.zeros((1, 200)), 1, probabilities=[0.8])
    probs, names = class_probabilities(one)
    np.testing.assert_allclose(probs, [0.2, 0.8])
    assert names == ("0", "1")
    bad = WindowResult(
        0,
        0.0,
        ("cz",),
        ("Cz",),
        np.zeros((1, 200)),
        1,
        probabilities=[0.1, 0.2, 0.7],
        class_names=("a", "b"),
    )
    with pytest.raises(ValueError, match="3 probabilities but 2 class names"):
        class_probabilities(bad)


def test_peak_decimation_keeps_spikes_and_gaps(eeg):
    data = eeg[:, :2000].copy()
    data[2, 1234] = 900.0
    data[5, 100:400] = np.nan
    times = np.arange(2000) / RATE
    t, out = peak_decimate(times, data, 500)
    assert out.shape == (8, 500) and t.shape == (500,)
    assert out[2].max() == 900.0
    np.testing.assert_array_equal(np.nanmax(out, axis=1), np.nanmax(data, axis=1))
    assert np.isnan(out[5]).any() and np.isfinite(out[4]).all()
    same_t, same = peak_decimate(times, data, 4000)
    assert same is data and same_t is times


def test_token_image_is_channel_major():
    n_channels, n_patches = 5, 3
    tokens = np.arange(4 * 8 * n_channels * n_patches).reshape(4, 8, n_channels * n_patches)
    image = token_image(tokens, n_channels, branch=2, level=6)
    assert image.shape == (n_channels, n_patches)
    for c in range(n_channels):
        for a in range(n_patches):
            assert image[c, a] == tokens[2, 6, c * n_patches + a]
    everything = token_image(tokens, n_channels, ALL_LEVELS, ALL_LEVELS)
    assert everything.shape == (n_channels, 32 * n_patches)
    third = everything[:, 3 * n_patches : 4 * n_patches]
    np.testing.assert_array_equal(third, tokens[0, 3].reshape(n_channels, n_patches))
    with pytest.raises(ValueError, match="level 8 is out of range"):
        token_image(tokens, n_channels, 0, 8)
    with pytest.raises(ValueError, match="cannot be split into 4 channels"):
        token_image(tokens, 4, 0, 0)
