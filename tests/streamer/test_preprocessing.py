"""Causal preprocessing: filter response, resampling against scipy, chunking, units, NaN."""

from __future__ import annotations

import importlib.util
import warnings
from fractions import Fraction
from pathlib import Path

import mne
import numpy as np
import pytest
from scipy import signal

from neurorvq_stream.streamer._preprocessing import Preprocessor, unit_scale_from_lsl
from neurorvq_stream.streamer._quality import ChannelFlag

RATES = [250.0, 256.0, 500.0, 512.0, 1000.0, 1024.0, 2048.0, 300.0, 437.5]


def _times(pre: Preprocessor, n: int, t0: float = 0.0) -> np.ndarray:
    return t0 + np.arange(n) / pre.source_rate


def _once(pre: Preprocessor, x: np.ndarray) -> np.ndarray:
    """``x`` through ``pre`` in one chunk; the 200 Hz samples."""
    return pre.process(x, _times(pre, len(x))).data


def _stream(pre: Preprocessor, x: np.ndarray, seed: int = 0, max_chunk: int = 97) -> np.ndarray:
    """Push ``x`` through ``pre`` in random chunk sizes (including empty chunks)."""
    rng = np.random.default_rng(seed)
    times = _times(pre, len(x))
    out, i = [], 0
    while i < x.shape[0]:
        n = int(rng.integers(0, max_chunk))
        out.append(pre.process(x[i : i + n], times[i : i + n]).data)
        i += n
    return np.concatenate(out)


def _amplitude(y: np.ndarray, freq: float, rate: float) -> float:
    """Least-squares amplitude of a sinusoid at ``freq`` in ``y``."""
    t = np.arange(y.size) / rate
    design = np.column_stack([np.sin(2 * np.pi * freq * t), np.cos(2 * np.pi * freq * t)])
    coef, *_ = np.linalg.lstsq(design, y, rcond=None)
    return float(np.hypot(*coef))


def _offline(pre: Preprocessor, x: np.ndarray) -> np.ndarray:
    """Scipy on the whole signal: the same causal filter, then its polyphase resampler."""
    zi = signal.sosfilt_zi(pre.sos)[:, :, None] * x[0][None, None, :]
    filtered, _ = signal.sosfilt(pre.sos, x, axis=0, zi=zi)
    ratio = Fraction(pre.target_rate / pre.source_rate).limit_denominator(1000)
    reference = signal.resample_poly(filtered, ratio.numerator, ratio.denominator, axis=0)
    return np.clip(reference, -pre.clip_uv, pre.clip_uv)


@pytest.mark.parametrize(("rate", "line"), [(250.0, 50.0), (1000.0, 50.0), (500.0, 60.0)])
def test_notch_attenuates_and_passband_is_flat(rate: float, line: float) -> None:
    seconds = 12
    t = np.arange(int(seconds * rate)) / rate
    gains = {}
    for freq in (2.0, 10.0, 20.0, 30.0, line):
        x = 100.0 * np.sin(2 * np.pi * freq * t)[:, None]
        y = _stream(Preprocessor(rate, 1, line_freq=line), x, seed=int(freq))
        steady = y[-6 * 200 :, 0]  # the last 6 s, well after the transients
        gains[freq] = 20 * np.log10(_amplitude(steady, freq, 200.0) / 100.0)
    assert gains[line] <= -40.0, gains
    for freq in (2.0, 10.0, 20.0, 30.0):
        assert abs(gains[freq]) <= 1.0, gains


@pytest.mark.parametrize("rate", RATES)
def test_streamed_output_matches_scipy_offline(rate: float) -> None:
    rng = np.random.default_rng(int(rate))
    n = int(8 * rate)
    t = np.arange(n) / rate
    freqs = rng.uniform(1.0, 40.0, size=6)
    x = sum(30 * np.sin(2 * np.pi * f * t + rng.uniform(0, 6)) for f in freqs)
    x = np.column_stack([x, -0.5 * x])
    pre = Preprocessor(rate, 2)
    y = _stream(pre, x, seed=1)
    reference = _offline(pre, x)
    assert y.shape[0] == pre.n_out
    assert reference.shape[0] - y.shape[0] == pytest.approx(pre.resampler_latency_s * 200, abs=2)
    # Away from the start edge, where scipy and the stream both pad with zeros.
    np.testing.assert_allclose(y[100:], reference[100 : y.shape[0]], atol=1e-3, rtol=0)


@pytest.mark.parametrize("rate", [256.0, 1000.0, 437.5])
def test_soxr_resampler_matches_scipy_within_tolerance(rate: float) -> None:
    n = int(20 * rate)
    t = np.arange(n) / rate
    x = (40 * np.sin(2 * np.pi * 7.0 * t) + 20 * np.sin(2 * np.pi * 23.0 * t))[:, None]
    pre = Preprocessor(rate, 1, resampler="soxr")
    y = _stream(pre, x, seed=2)
    reference = _offline(pre, x)[: y.shape[0], 0]
    # soxr uses its own filter: within 0.5 % of the 60 uV peak, away from the start edge.
    np.testing.assert_allclose(y[200:, 0], reference[200:], atol=0.3, rtol=0)


def test_real_biosemi_eeg_streamed_matches_offline() -> None:
    spec = importlib.util.find_spec("pylossless")
    assert spec is not None and spec.origin is not None, "pylossless (test data) is missing"
    edf = Path(spec.origin).parent / "assets/test_data/sub-s01/eeg/sub-s01_task-faceO_eeg.edf"
    raw = mne.io.read_raw_edf(edf, preload=False, verbose="error")
    volts = raw.get_data(picks=list(range(0, 128, 8)), start=0, stop=int(30 * raw.info["sfreq"]))
    pre = Preprocessor(raw.info["sfreq"], 16, unit_scale=unit_scale_from_lsl("V"))
    y = _stream(pre, volts.T, seed=6, max_chunk=40)
    reference = _offline(pre, volts.T * 1e6)
    assert 1.0 < np.std(y) < 500.0  # real EEG amplitudes in uV, not volts or garbage
    np.testing.assert_allclose(y[100:], reference[100 : y.shape[0]], atol=1e-3, rtol=0)


@pytest.mark.parametrize("resampler", ["polyphase", "soxr"])
def test_output_independent_of_chunking(resampler: str) -> None:
    rng = np.random.default_rng(3)
    x = rng.standard_normal((5120, 4)) * 50
    whole = Preprocessor(512.0, 4, resampler=resampler)
    one_shot = np.concatenate([_once(whole, x), _once(whole, x[:0])])
    pieces = _stream(Preprocessor(512.0, 4, resampler=resampler), x, seed=4, max_chunk=300)
    n = min(one_shot.shape[0], pieces.shape[0])
    assert n > 1500
    np.testing.assert_allclose(pieces[:n], one_shot[:n], atol=1e-6, rtol=0)


def test_output_times_are_the_source_times_of_their_positions() -> None:
    # Output k stands for input position k * 1000 / 200 = 5k: its time is interpolated from
    # the (jittered) input timestamps, whatever the chunking.
    rng = np.random.default_rng(3)
    stamps = 100.0 + np.arange(3000) / 1000.0 + rng.uniform(0, 4e-4, 3000)
    pre = Preprocessor(1000.0, 1)
    out, times, i = [], [], 0
    while i < 3000:
        n = int(rng.integers(0, 97))
        piece = pre.process(np.zeros((len(stamps[i : i + n]), 1)), stamps[i : i + n])
        out.append(piece.data)
        times.append(piece.times)
        i += n
    times = np.concatenate(times)
    assert times.shape == (np.concatenate(out).shape[0],) and times.size > 550
    np.testing.assert_allclose(times, stamps[5 * np.arange(times.size)])


def test_unit_scale_from_lsl_and_clip() -> None:
    assert unit_scale_from_lsl("V") == 1e6
    assert unit_scale_from_lsl("volts") == 1e6
    assert unit_scale_from_lsl("mV") == 1e3
    assert unit_scale_from_lsl("µV") == 1.0
    assert unit_scale_from_lsl("microvolts") == 1.0
    assert unit_scale_from_lsl("nV") == 1e-3
    with pytest.warns(UserWarning, match=r"assuming microvolts.*set stream\.unit.*--unit V"):
        assert unit_scale_from_lsl("") == 1.0
    with pytest.raises(ValueError, match=r"unit 'furlong', which is not one of V, mV, uV.*"
                                         r"set stream\.unit"):
        unit_scale_from_lsl("furlong")
    t = np.arange(2560) / 256.0
    volts = (2e-3 * np.sin(2 * np.pi * 10 * t))[:, None]  # 2000 uV, beyond the clip
    in_uv = _once(Preprocessor(256.0, 1), volts * 1e6)
    in_v = _once(Preprocessor(256.0, 1, unit_scale=unit_scale_from_lsl("V")), volts)
    np.testing.assert_allclose(in_v, in_uv, rtol=1e-6)
    assert np.abs(in_v).max() == pytest.approx(500.0)


def test_units_as_mne_lsl_writes_them_are_powers_of_ten_of_volts() -> None:
    # mne-lsl's PlayerLSL declares MNE's unit multiplier: "0" volts, "-6" microvolts.
    assert unit_scale_from_lsl("0") == 1e6
    assert unit_scale_from_lsl("-3") == 1e3
    assert unit_scale_from_lsl("-6") == 1.0
    assert unit_scale_from_lsl("-9") == pytest.approx(1e-3)
    assert unit_scale_from_lsl("-6 V") == unit_scale_from_lsl("-6volts") == 1.0
    assert unit_scale_from_lsl("uV", configured="-6") == 1.0
    for unknown in ("3", "-12", "1e-6", "-6 uV"):  # not a voltage an EEG stream is sent in
        with pytest.raises(ValueError, match=f"unit '{unknown}', which is not one of V, mV"):
            unit_scale_from_lsl(unknown)


def test_the_configured_unit_wins_over_missing_or_wrong_stream_metadata() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the user said which unit: nothing to warn about
        assert unit_scale_from_lsl("", configured="V") == 1e6
        assert unit_scale_from_lsl("volts", configured="V") == 1e6
    with pytest.warns(UserWarning, match=r"declares its channels in 'microvolts'; stream\.unit "
                                         r"'V' overrides it"):
        assert unit_scale_from_lsl("microvolts", configured="V") == 1e6
    with pytest.warns(UserWarning, match="declares its channels in 'furlong'"):
        assert unit_scale_from_lsl("furlong", configured="millivolts") == 1e3
    for wrong in ("", "furlong"):
        with pytest.raises(ValueError, match=f"stream.unit '{wrong}' is not an EEG unit; set it"):
            unit_scale_from_lsl("uV", configured=wrong)


def test_nan_chunk_is_held_and_flagged_without_poisoning_state() -> None:
    rng = np.random.default_rng(5)
    x = rng.standard_normal((5000, 2)) * 20
    clean = Preprocessor(500.0, 2)
    dirty = Preprocessor(500.0, 2)
    times = _times(clean, 5000)
    y_clean = np.concatenate([clean.process(x[i : i + 50], times[i : i + 50]).data
                              for i in range(0, 5000, 50)])
    bad = x.copy()
    bad[1000:1100, 1] = np.nan
    bad[1200, 1] = np.inf
    pieces = [dirty.process(bad[i : i + 50], times[i : i + 50]) for i in range(0, 5000, 50)]
    y_dirty = np.concatenate([piece.data for piece in pieces])
    assert np.isfinite(y_dirty).all()
    # The output samples of the chunks that held a value carry NONFINITE on that channel.
    held = [k for k, piece in enumerate(pieces)
            if (piece.flags[:, 1] & ChannelFlag.NONFINITE).any()]
    assert held == [20, 21, 24]
    assert not any((piece.flags[:, 0] & ChannelFlag.NONFINITE).any() for piece in pieces)
    np.testing.assert_array_equal(y_dirty[:, 0], y_clean[:, 0])
    # The damaged stretch decays away: the tail matches the clean run again.
    np.testing.assert_allclose(y_dirty[-200:, 1], y_clean[-200:, 1], atol=0.05)


def test_invalid_arguments_are_explained() -> None:
    with pytest.raises(ValueError, match="band-pass"):
        Preprocessor(80.0, 2)
    with pytest.raises(ValueError, match="positive number of Hz"):
        Preprocessor(0.0, 2)
    with pytest.raises(ValueError, match=r"shape \(n, 3\)"):
        Preprocessor(250.0, 3).process(np.zeros((10, 2)), np.arange(10.0))
    with pytest.raises(ValueError, match="one time per sample"):
        Preprocessor(250.0, 2).process(np.zeros((10, 2)), np.arange(9.0))


def test_slow_potentials_pass_without_a_high_pass() -> None:
    rate = 250.0
    t = np.arange(int(60 * rate)) / rate
    slow = (40 * np.sin(2 * np.pi * 0.05 * t))[:, None]  # a 20 s cycle, as a slow potential
    kept = _stream(Preprocessor(rate, 1, band=(None, 44.5)), slow)
    removed = _stream(Preprocessor(rate, 1), slow)  # the default 0.5 Hz high-pass
    late = slice(len(kept) // 2, None)
    assert _amplitude(kept[late, 0], 0.05, 200.0) == pytest.approx(40, rel=0.02)
    assert _amplitude(removed[late, 0], 0.05, 200.0) < 2.0


def test_average_reference_subtracts_the_channel_mean() -> None:
    rng = np.random.default_rng(8)
    x = rng.standard_normal((2000, 3)) * 10 + np.array([100.0, -50.0, 20.0])
    pre = Preprocessor(250.0, 3, reference="average")
    out = pre.process(x, _times(pre, len(x)))
    assert np.abs(out.data.sum(axis=1)).max() < 1e-3  # channels sum to zero
    assert np.abs(out.data).max() > 1.0
