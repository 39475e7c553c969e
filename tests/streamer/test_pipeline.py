"""The live pipeline over real loopback streams with the parity checkpoints.

A player streams synthetic EEG with 10-20 labels (few channels keep inference quick);
the pipeline runs the real tokenizer and classifier from ``tests/fixtures/parity_v1``.
"""

import json
import os
import shutil
import threading
import time
import uuid
from pathlib import Path

import numpy as np
import pylsl
import pytest
import pyxdf
from helpers import CLOCK_SYNC_S, EVENTUALLY_S, wait_until

from neurorvq_stream.decoders import WindowSpec
from neurorvq_stream.decoders._persistence import decoder_metadata
from neurorvq_stream.engines._checkpoint import sidecar_path
from neurorvq_stream.report import load_session
from neurorvq_stream.report._figures import (
    confusion,
    predictions_over_time,
    reliability,
    score_decisions,
)
from neurorvq_stream.streamer import Pipeline, Player, Recording, RunConfig, read_decision
from neurorvq_stream.streamer._lsl import ChannelInfo, find_streams, read_channels, write_channels
from neurorvq_stream.streamer._quality import ChannelFlag

pytestmark = pytest.mark.slow  # live streams in real time

LABELS = ("Fp1", "Fp2", "C3", "Cz", "C4", "T3", "O1", "O2")
RATE = 250.0


def _recording(seconds: float, seed: int = 0) -> Recording:
    rng = np.random.default_rng(seed)
    n = int(seconds * RATE)
    t = np.arange(n) / RATE
    data = 20 * rng.standard_normal((n, len(LABELS))) + 30 * np.sin(2 * np.pi * 10 * t)[:, None]
    return Recording(data.astype(np.float32), RATE,
                     [ChannelInfo(label, "microvolts", "EEG") for label in LABELS], [])


@pytest.fixture
def make_config(parity_tokenizer, parity_classifier):
    """``make_config(name, **windows)``: a quick run on stream ``name`` (parity models)."""
    def make(name: str, **windows: float) -> RunConfig:
        return RunConfig.from_dict({
            # A busy machine may hold the player back for a moment: that is not a stall here.
            "stream": {"name": name, "resolve_timeout": EVENTUALLY_S, "stall_timeout": 5.0},
            "windows": {"n_patches": 1, "hop": 0.25, **windows},
            "models": {"tokenizer": str(parity_tokenizer),
                       "classifier": str(parity_classifier), "watch_classifier": False},
            "budgets": {"end_to_end_ms": 5000.0, "inference_ms": 5000.0},
            "outlets": {"source_id": f"{name}-out", "tokens": False, "metrics": False},
        })

    return make


@pytest.fixture
def live():
    """A player on a fresh name; the test builds and stops its own pipeline."""
    name = f"run-{uuid.uuid4().hex[:8]}"
    player = Player(_recording(10.0), name=name, loop=True, chunk_seconds=0.02)
    player.start()
    yield name, player
    player.stop()


def test_outputs_are_stamped_with_the_source_time_of_the_window(live, make_config):
    name, player = live
    pipe = Pipeline(make_config(name)).start()
    (info,) = pylsl.resolve_byprop("source_id", f"{name}-out-predictions", timeout=EVENTUALLY_S)
    # No clock correction: the stamps arrive exactly as the pipeline sent them.
    reader = pylsl.StreamInlet(info, processing_flags=0)
    reader.open_stream(timeout=EVENTUALLY_S)
    probs, stamps = [], []

    def three_predictions() -> bool:
        p, t = reader.pull_chunk(timeout=0.05, as_numpy=True)
        probs.extend(p)
        stamps.extend(t)
        return len(stamps) >= 3

    wait_until(three_predictions, "three predictions")
    results = {r.index: r for r in pipe.hub.since(-1)}
    pipe.stop()
    by_time = {r.t_last: r for r in results.values()}
    for p, t in zip(probs, stamps, strict=True):
        r = by_time[t]  # each prediction carries its window's t_last, exactly
        np.testing.assert_allclose(p, r.probabilities, rtol=1e-6)
        assert r.class_names and abs(p.sum() - 1) < 1e-5
    # t_last is on the player's clock (through the pipeline inlet's clock-offset estimate):
    # 200 Hz output k sits at source position k*RATE/200.
    k = np.array([(r.t_last - player.t0) * 200.0 for r in results.values()])
    np.testing.assert_allclose(k, np.round(k), atol=0.05 + CLOCK_SYNC_S * 200)
    r = results[max(results)]
    assert r.tokens.shape[:2] == (4, 8) and r.reconstruction.shape == (len(LABELS), 200)
    assert r.channels[LABELS.index("T3")] == "t7"  # old name mapped
    assert pipe.hub.status().samples_lost == 0


def test_inference_error_is_counted_and_acquisition_goes_on(live, monkeypatch, make_config):
    name, _ = live
    pipe = Pipeline(make_config(name)).start()
    wait_until(lambda: pipe.hub.status().windows_done >= 1, "windows_done >= 1")

    def broken(*args, **kwargs):
        raise RuntimeError("simulated engine failure")

    monkeypatch.setattr(pipe.models.classifier.session, "predict_proba", broken)
    before = pipe.hub.status()
    wait_until(lambda: pipe.hub.status().inference_errors >= 3, "inference_errors >= 3")
    during = pipe.hub.status()
    monkeypatch.undo()
    wait_until(lambda: pipe.hub.status().windows_done > during.windows_done,
               "a window done after the engine was repaired")
    after = pipe.hub.status()
    pipe.stop()
    assert during.inference_errors >= 3 and "simulated engine failure" in during.last_error
    assert after.samples_received > during.samples_received > before.samples_received
    assert after.windows_done > during.windows_done
    assert after.stream_state == "streaming"


def test_a_thread_that_dies_is_reported_and_acquisition_keeps_every_sample(live, monkeypatch,
                                                                          make_config):
    name, _ = live
    pipe = Pipeline(make_config(name)).start()
    wait_until(lambda: pipe.hub.status().windows_done >= 1, "windows_done >= 1")

    def broken_outlet(*args, **kwargs):
        raise OSError("simulated outlet failure")

    monkeypatch.setattr(pipe.outlets, "push", broken_outlet)  # kills the inference thread
    wait_until(lambda: bool(pipe.hub.status().failed), "the failure to be reported")
    during = pipe.hub.status()
    # Acquisition goes on: a further second of samples arrives.
    wait_until(lambda: pipe.hub.status().samples_received > during.samples_received + 250,
               "a second of samples after the failure")
    after = pipe.hub.status()
    pipe.stop()
    assert during.health == "error" and "inference" in during.failed[0]
    assert "simulated outlet failure" in during.failed[0]
    assert after.windows_done == during.windows_done  # nothing classified silently any more
    assert (after.samples_lost, after.gaps) == (0, 0)  # none lost, no gap


def test_worker_takes_the_newest_window_and_counts_the_dropped(make_config):
    name = f"burst-{uuid.uuid4().hex[:8]}"
    # 0.2 s chunks and a 5 ms hop: each chunk completes ~40 windows at once, faster than
    # any inference can take them, so all but the newest of each burst must be dropped.
    player = Player(_recording(10.0), name=name, loop=True, chunk_seconds=0.2)
    player.start()
    pipe = Pipeline(make_config(name, hop=0.005)).start()
    wait_until(lambda: pipe.hub.status().windows_done >= 5, "windows_done >= 5")
    pipe.stop()
    player.stop()
    s = pipe.hub.status()
    indices = [r.index for r in pipe.hub.since(-1)]
    assert s.windows_dropped > s.windows_done, s
    assert min(np.diff(indices)) >= 1 and max(np.diff(indices)) > 1, indices  # newest first
    # Every window cut before the last published one was either run or counted as dropped.
    assert s.windows_done + s.windows_dropped >= indices[-1] + 1, (s, indices)
    assert s.queue_depth <= 1, s


def test_classifier_file_change_is_picked_up_without_restart(live, tmp_path, make_config,
                                                             parity_classifier):
    name, _ = live
    head = tmp_path / "head.pt"
    shutil.copy(parity_classifier, head)
    config = make_config(name).override(**{"models.classifier": str(head),
                                       "models.watch_classifier": True})
    pipe = Pipeline(config).start()
    first = pipe.models.classifier
    wait_until(lambda: pipe.hub.status().windows_done >= 1, "windows_done >= 1")
    shutil.copy(parity_classifier, head)  # what `calibrate` does when it saves
    os.utime(head, (time.time() + 5, time.time() + 5))
    wait_until(lambda: pipe.models.classifier is not first, "the classifier reload")
    done = pipe.hub.status().windows_done
    wait_until(lambda: pipe.hub.status().windows_done > done, "windows_done > done")
    pipe.stop()
    assert pipe.models.classifier is not first
    assert pipe.hub.status().windows_done > done
    assert pipe.hub.status().last_error == ""


TEN_TWENTY = ("Fp1", "Fp2", "F7", "F3", "Fz", "F4", "F8", "T7", "C3", "Cz", "C4", "T8", "P7",
              "P3", "Pz", "P4", "P8", "O1", "O2")


@pytest.mark.parametrize("rate", [1000.0, 2048.0])
def test_a_complete_stream_with_jittered_chunk_stamps_yields_every_window(make_config, rate):
    """19 channels, every sample sent, each chunk stamped up to 10 ms late (stamped on
    arrival): no loss, no gap, and a window every hop from the first to the last."""
    name = f"jitter-{uuid.uuid4().hex[:8]}"
    info = pylsl.StreamInfo(name, "EEG", len(TEN_TWENTY), rate, "float32", name)
    write_channels(info, [ChannelInfo(c, "microvolts", "EEG") for c in TEN_TWENTY])
    outlet = pylsl.StreamOutlet(info)
    config = make_config(name, hop=0.25).override(**{"models.tokenizer": "none",
                                                     "models.classifier": "none"})
    pipe = Pipeline(config).start()
    rng = np.random.default_rng(int(rate))
    n = round(4.0 * rate)
    data = (20 * rng.standard_normal((n, len(TEN_TWENTY)))).astype(np.float32)
    t0 = pylsl.local_clock()
    k = 0
    while k < n:  # in real time, chunks of 10-80 samples, each 0-10 ms late
        stop = min(n, k + int(rng.integers(10, 81)))
        stamps = t0 + np.arange(k, stop) / rate + rng.uniform(0.0, 0.010)
        while pylsl.local_clock() < stamps[-1]:
            time.sleep(0.001)
        outlet.push_chunk(data[k:stop], stamps.tolist())
        k = stop
    # A gap-free 4 s stream gives the windows ending at 1.0, 1.25, ... 3.75 s.
    expected = t0 + np.arange(1.0, 4.0, 0.25)
    wait_until(lambda: pipe.hub.status().samples_received == n
               and any(r.t_last > expected[-1] - 0.02 for r in pipe.hub.since(-1)),
               "every sample and the window at the end of the stream")
    pipe.stop()
    s = pipe.hub.status()
    results = pipe.hub.since(-1)
    assert (s.samples_received, s.samples_lost, s.gaps, s.windows_dropped) == (n, 0, 0, 0)
    assert not any(r.gap for r in results)
    # Every window, each stamped with its last sample's (jittered) time.
    np.testing.assert_allclose([r.t_last for r in results], expected, atol=0.015, rtol=0)


@pytest.mark.parametrize(("stamped_late", "max_jitter"), [(0.3, 0.5), (0.0, 0.02)])
def test_a_chunk_held_back_then_delivered_yields_every_window(make_config, stamped_late,
                                                               max_jitter):
    """1 kHz, every sample sent, one chunk held back 0.3 s: stamped on delivery by a source
    known to be that late (``max_jitter``), or with its own stamps. No gap, no loss, and
    every window is cut, stamped with its last sample's true time."""
    rate = 1000.0
    name = f"held-{uuid.uuid4().hex[:8]}"
    info = pylsl.StreamInfo(name, "EEG", len(TEN_TWENTY), rate, "float32", name)
    write_channels(info, [ChannelInfo(c, "microvolts", "EEG") for c in TEN_TWENTY])
    outlet = pylsl.StreamOutlet(info)
    config = make_config(name, hop=0.25).override(**{
        "models.tokenizer": "none", "models.classifier": "none",
        "stream.max_jitter": max_jitter})
    pipe = Pipeline(config).start()
    n, held = round(4.0 * rate), round(2.0 * rate)
    data = (20 * np.random.default_rng(3).standard_normal((n, len(TEN_TWENTY)))).astype(
        np.float32)
    t0 = pylsl.local_clock()
    for k in range(0, n, 40):  # in real time, 40 ms chunks
        stamps = t0 + np.arange(k, k + 40) / rate
        delay = 0.3 if k == held else 0.0
        while pylsl.local_clock() < stamps[-1] + delay:
            time.sleep(0.001)
        outlet.push_chunk(data[k:k + 40], (stamps + (stamped_late if delay else 0.0)).tolist())
    # Output k stands for source position k * rate / 200: a window ends one 200 Hz sample
    # before each hop.
    expected = t0 + np.arange(1.0, 4.0, 0.25) - 1 / 200
    wait_until(lambda: pipe.hub.status().samples_received == n
               and any(r.t_last > expected[-1] - 0.1 for r in pipe.hub.since(-1)),
               "every sample and the window at the end of the stream")
    pipe.stop()
    s = pipe.hub.status()
    done = np.array([r.t_last for r in pipe.hub.since(-1)])
    assert (s.samples_received, s.samples_lost, s.gaps) == (n, 0, 0)
    # Every window was cut: run, or replaced by a newer one before inference took it (the
    # held chunk completes two at once).
    assert len(done) + s.windows_dropped == len(expected)
    nearest = expected[np.abs(done[:, None] - expected).argmin(axis=1)]
    assert len(set(nearest)) == len(done)
    np.testing.assert_allclose(done, nearest, atol=CLOCK_SYNC_S, rtol=0)


def test_a_gap_is_reported_and_no_window_spans_it(make_config):
    name = f"gap-{uuid.uuid4().hex[:8]}"
    info = pylsl.StreamInfo(name, "EEG", len(LABELS), RATE, "float32", name)
    write_channels(info, _recording(0.1).channels)
    outlet = pylsl.StreamOutlet(info)
    pipe = Pipeline(make_config(name, hop=0.5)).start()
    data = _recording(4.0, seed=1).data
    t0 = pylsl.local_clock()
    missing = 100
    for k in range(0, len(data), 25):  # 0.1 s chunks in real time, 100 samples skipped at 2 s
        stop = min(k + 25, len(data))
        shift = missing if k >= len(data) // 2 else 0
        stamps = t0 + (np.arange(k, stop) + shift) / RATE
        while pylsl.local_clock() < stamps[-1]:
            time.sleep(0.005)
        outlet.push_chunk(data[k:stop], stamps.tolist())
    gap_end = t0 + (len(data) // 2 + missing) / RATE
    wait_until(lambda: any(r.t_last > gap_end for r in pipe.hub.since(-1)),
               "a window after the gap")
    pipe.stop()
    s = pipe.hub.status()
    gap_start, gap_end = t0 + (len(data) // 2 - 1) / RATE, t0 + (len(data) // 2 + missing) / RATE
    results = pipe.hub.since(-1)
    assert (s.gaps, s.samples_lost) == (1, missing)
    for r in results:
        first = r.t_last - (r.signal.shape[1] - 1) / 200.0
        assert r.t_last <= gap_start + 1e-3 or first >= gap_end - 1e-3
    after = [r for r in results if r.t_last > gap_end]
    assert after and after[0].gap and not any(r.gap for r in after[1:])


@pytest.mark.parametrize("speed", [1.0, 4.0])
def test_marker_locked_windows_hold_the_marked_sample(make_config, speed):
    name = f"erp-{uuid.uuid4().hex[:8]}"
    rec = _recording(6.0, seed=2)
    rec.data[:] *= 0.05
    onsets = [1.3, 2.7, 4.1, 5.5]
    for onset in onsets:  # a 200 uV spike on every channel exactly at each marker
        rec.data[round(onset * RATE)] += 200.0
    rec.events.extend((onset, f"stim-{k}") for k, onset in enumerate(onsets))
    player = Player(rec, name=name, loop=True, chunk_seconds=0.02, speed=speed)
    config = make_config(name).override(**{
        "markers.name": f"{name}-Markers", "windows.mode": "markers",
        "windows.marker_offset": -0.2, "windows.marker_length": 1})
    pipe = Pipeline(config).start()
    player.start()
    wait_until(lambda: pipe.hub.status().windows_done >= 3, "windows_done >= 3")
    pipe.stop()
    player.stop()
    results = pipe.hub.since(-1)
    assert len(results) >= 3
    for r in results:
        assert r.label in {label for _, label in rec.events}
        (t_marker,) = [t for t, m in r.markers if m == r.label]
        # The window starts 0.2 s of recording before its marker and lasts 1 s (200
        # samples); a replay at `speed` runs the clock that much faster. The marker and the
        # EEG come through two inlets, each with its own clock-offset estimate.
        expected = t_marker + (-0.2 + 199 / 200) / speed
        assert abs(r.t_last - expected) < 2 / (200 * speed) + CLOCK_SYNC_S
        # The spike (after the causal filters' short delay) sits 40 samples in.
        peak = int(np.argmax(np.abs(r.signal).mean(axis=0)))
        assert 40 <= peak <= 60, peak


def _run_until(pipe: Pipeline, windows: int) -> list:
    wait_until(lambda: pipe.hub.status().windows_done >= windows, f"{windows} windows")
    pipe.stop()
    return pipe.hub.since(-1)


def test_a_stream_in_volts_without_a_unit_is_flagged_not_classified(make_config):
    name = f"volts-{uuid.uuid4().hex[:8]}"
    rec = _recording(10.0)
    volts = Recording(rec.data * 1e-6, RATE, [ChannelInfo(c.label, "", "EEG")
                                              for c in rec.channels], [])
    player = Player(volts, name=name, loop=True, chunk_seconds=0.02)
    player.start()
    try:
        first = Pipeline(make_config(name)).start()
        results = _run_until(first, 3)
        fixed = Pipeline(make_config(name).override(**{"stream.unit": "V"})).start()
        fixed_results = _run_until(fixed, 3)
    finally:
        player.stop()
    assert "probably in volts" in first.hub.status().stream_warnings[0]
    assert "stream.unit" in first.hub.status().stream_warnings[0]
    assert all(r.rejected and r.probabilities is None for r in results)
    assert all(set(r.flagged_channels()) == set(r.channels) for r in results)
    assert all("unit" in kinds for r in results for kinds in r.flagged_channels().values())
    # With the unit set, the same stream is in microvolts and classified.
    assert not any(r.rejected for r in fixed_results)
    assert all(r.probabilities is not None and not r.flagged_channels() for r in fixed_results)
    assert fixed.hub.status().stream_warnings == ()


def test_a_stream_faster_than_its_declared_rate_is_flagged(make_config):
    name = f"rate-{uuid.uuid4().hex[:8]}"
    info = pylsl.StreamInfo(name, "EEG", len(LABELS), 128.0, "float32", name)
    write_channels(info, _recording(0.1).channels)
    outlet = pylsl.StreamOutlet(info)
    pipe = Pipeline(make_config(name)).start()
    data = _recording(20.0).data
    stop = threading.Event()

    def send_256_hz() -> None:  # declares 128 Hz, sends 256 samples a second
        k = 0
        while not stop.is_set():
            outlet.push_chunk(data[k % 4000 : k % 4000 + 16])
            k += 16
            time.sleep(16 / 256)

    sender = threading.Thread(target=send_256_hz, daemon=True)
    sender.start()
    try:
        wait_until(lambda: any(r.rejected for r in pipe.hub.since(-1)), "a rejected window")
        status = pipe.hub.status()
    finally:
        pipe.stop()
        stop.set()
        sender.join()
    assert status.measured_rate == pytest.approx(256.0, rel=0.15)
    (warning,) = status.stream_warnings
    assert "not the declared 128 Hz" in warning
    flagged = [r for r in pipe.hub.since(-1) if r.rejected]
    assert all(kinds == ("rate",) for r in flagged for kinds in r.flagged_channels().values())


def test_nan_and_flat_channels_are_reported_everywhere_and_block_classification(make_config):
    name = f"bad-{uuid.uuid4().hex[:8]}"
    rec = _recording(10.0)
    rec.data[:, 0] = np.nan  # Fp1 came loose: NaN from the amplifier
    rec.data[:, 1] = 12.5  # Fp2 stuck: a constant
    player = Player(rec, name=name, loop=True, chunk_seconds=0.02)
    player.start()
    config = make_config(name).override(**{"outlets.metrics": True})
    pipe = Pipeline(config).start()
    try:
        (info,) = pylsl.resolve_byprop("source_id", f"{name}-out-metrics", timeout=EVENTUALLY_S)
        metrics = pylsl.StreamInlet(info)
        metrics.open_stream(timeout=EVENTUALLY_S)
        rows: list = []

        def metric_rows() -> bool:
            chunk, _ = metrics.pull_chunk(timeout=0.05)
            rows.extend(chunk)
            return len(rows) >= 2

        wait_until(metric_rows, "two metrics samples")
        labels = [c.label for c in read_channels(metrics.info(timeout=EVENTUALLY_S))]
        results = _run_until(pipe, 2)
    finally:
        player.stop()
    # 2 of 8 channels flagged: within the default limit (25 %), so still classified.
    for r in results:
        # Fp1 never had a finite value: held at 0, it is flat as well.
        assert r.flagged_channels() == {"fp1": ("nonfinite", "flat"), "fp2": ("flat",)}
        assert not r.rejected and r.probabilities is not None
    row = dict(zip(labels, rows[-1], strict=True))
    assert (row["flagged_nonfinite"], row["flagged_flat"]) == (1, 2)
    assert (row["flags_fp1"], row["flags_fp2"], row["flags_cz"]) == (
        ChannelFlag.NONFINITE | ChannelFlag.FLAT, ChannelFlag.FLAT, 0)
    assert dict(pipe.hub.status().flag_counts)["flat"] == 2


def test_two_pipelines_on_one_stream_do_not_share_outlets(live, make_config):
    name, _ = live
    settings = make_config(name).to_dict()
    settings["outlets"]["source_id"] = None  # derived from the input stream
    config = RunConfig.from_dict(settings)
    first = Pipeline(config).start()
    try:
        assert first.outlets.names[0] == f"{name}-NeuroRVQ-Predictions"
        assert find_streams(name=first.outlets.names[0], timeout=EVENTUALLY_S)  # answering
        with pytest.raises(ValueError, match="already publishes an LSL stream with source_id"):
            Pipeline(config).start()
        second = Pipeline(config.override(**{"outlets.name": "Subject2",
                                             "outlets.source_id": "subject2"})).start()
        assert second.outlets.names[0] == "Subject2-Predictions"
        second.stop()
    finally:
        first.stop()


# ---------------------------------------------------------------- decoders and their windows
MARKED = ("stim-a", "stim-b")


def _decoder_file(folder: Path, parity_classifier: Path, spec: WindowSpec,
                  name: str = "decoder.pt",
                  classes: tuple[str, ...] = tuple(f"class{k}" for k in range(4)),
                  class_markers: dict | None = None) -> Path:
    """The parity head as a classifier file whose sidecar records ``spec`` and ``classes``."""
    path = folder / name
    meta = decoder_metadata("neurorvq-head", classes, spec,
                            {"cv_mean": 0.8, "cv_std": 0.05, "chance": 0.25}, {},
                            class_markers or {}, {})
    sidecar_path(path).write_text(json.dumps(meta))
    shutil.copy(parity_classifier, path)  # last: a watcher sees the complete pair
    return path


def _erp_spec(channels: tuple[str, ...] = ("c3", "cz", "c4")) -> WindowSpec:
    return WindowSpec(mode="markers", n_patches=1, marker_offset=-0.2, labels=MARKED,
                      channels=channels)


@pytest.fixture
def marked():
    """A replay with a marker every 0.7 s, alternating between two labels and "other"."""
    name = f"erp-{uuid.uuid4().hex[:8]}"
    rec = _recording(30.0)
    labels = [*MARKED, "other"]
    rec.events.extend((1.0 + 0.7 * k, labels[k % 3]) for k in range(40))
    player = Player(rec, name=name, loop=True, chunk_seconds=0.02)
    player.start()
    yield name
    player.stop()


def test_a_marker_locked_classifier_gets_its_own_windows_beside_sliding_ones(
        marked, make_config, parity_classifier, tmp_path):
    trials = {"class0": ("stim-a",), "class1": ("stim-b",)}  # the markers' classes
    classifier = _decoder_file(tmp_path, parity_classifier, _erp_spec(),
                               class_markers=trials)
    config = make_config(marked).override(**{
        "models.classifier": str(classifier), "markers.name": f"{marked}-Markers"})
    pipe = Pipeline(config).start()
    try:
        paths = [cut.path for cut in pipe.processing.cuts]
        assert [(p.window.mode, p.tokenize, p.classifier is not None, p.display)
                for p in paths] == [("sliding", True, False, True),
                                    ("markers", False, True, False)]
        wait_until(lambda: sum(r.probabilities is not None for r in pipe.hub.since(-1)) >= 4,
                   "four classified marker windows")
    finally:
        pipe.stop()
    results = pipe.hub.since(-1)
    sliding = [r for r in results if r.display]
    decoded = [r for r in results if r.probabilities is not None]
    assert sliding and all(r.tokens is not None and r.probabilities is None for r in sliding)
    for r in decoded:  # only the two labels, 1 s from 0.2 s before the marker, no tokens
        assert r.label in MARKED and r.tokens is None and not r.display
        (t_marker,) = [t for t, m in r.markers if m == r.label]
        assert abs(r.t_last - (t_marker - 0.2 + 199 / 200)) < 1 / 200 + CLOCK_SYNC_S
        assert r.class_names == tuple(f"class{k}" for k in range(4))
        assert r.truth == ("class0" if r.label == "stim-a" else "class1")
    # Every decoded window answers a trial, and the sliding windows between them (no
    # classifier) do not reset the run's score.
    assert pipe.hub.status().inference.trials == len(decoded)


def test_a_classifier_the_stream_cannot_feed_is_refused(marked, make_config, parity_classifier,
                                                        tmp_path):
    missing = _decoder_file(tmp_path, parity_classifier, _erp_spec(("cz", "poz", "iz")))
    config = make_config(marked).override(**{
        "models.classifier": str(missing), "markers.name": f"{marked}-Markers"})
    with pytest.raises(ValueError, match=r"2 of which this stream does not give: poz, iz"):
        Pipeline(config).start()
    erp = _decoder_file(tmp_path, parity_classifier, _erp_spec(), "erp.pt")
    with pytest.raises(ValueError, match="locked to the markers stim-a, stim-b; name the "):
        Pipeline(make_config(marked).override(**{"models.classifier": str(erp)})).start()


def test_hot_swap_to_a_classifier_with_other_windows(marked, make_config, parity_classifier,
                                                     tmp_path):
    head = tmp_path / "head.pt"
    shutil.copy(parity_classifier, head)  # no window record: classifies the run's windows
    config = make_config(marked).override(**{
        "models.classifier": str(head), "models.watch_classifier": True,
        "markers.name": f"{marked}-Markers"})
    pipe = Pipeline(config).start()
    try:
        wait_until(lambda: any(r.probabilities is not None and r.display
                               for r in pipe.hub.since(-1)), "a classified sliding window")
        before = max(r.index for r in pipe.hub.since(-1))
        _decoder_file(tmp_path, parity_classifier, _erp_spec(), "head.pt")
        os.utime(head, (time.time() + 5, time.time() + 5))  # a new time, whatever the clock
        wait_until(lambda: any(r.probabilities is not None and not r.display
                               for r in pipe.hub.since(-1)), "a classified marker window")
        swapped_at = min(r.index for r in pipe.hub.since(-1)
                         if r.probabilities is not None and not r.display)
        wait_until(lambda: sum(r.display for r in pipe.hub.since(swapped_at)) >= 3,
                   "sliding windows after the swap")
    finally:
        pipe.stop()
    assert pipe.hub.status().last_error == ""
    # Windows are numbered in the order they were cut: after the first marker window of the
    # new classifier, sliding windows feed the tokenizer only.
    later = [r for r in pipe.hub.since(swapped_at) if r.display]
    assert before < swapped_at and later
    assert all(r.probabilities is None and r.tokens is not None for r in later)


def test_decisions_carry_their_trial_and_follow_the_confidence_threshold(
        marked, make_config, parity_classifier, tmp_path):
    classifier = _decoder_file(tmp_path, parity_classifier, _erp_spec())
    config = make_config(marked).override(**{
        "models.classifier": str(classifier), "markers.name": f"{marked}-Markers",
        "decisions.min_confidence": 0.5})
    pipe = Pipeline(config).start()
    try:
        (info,) = pylsl.resolve_byprop("source_id", f"{marked}-out-decisions",
                                       timeout=EVENTUALLY_S)
        decisions = pylsl.StreamInlet(info)
        (minfo,) = pylsl.resolve_byprop("name", f"{marked}-Markers", timeout=EVENTUALLY_S)
        markers = pylsl.StreamInlet(minfo, processing_flags=pylsl.proc_clocksync)
        for inlet in (decisions, markers):
            inlet.open_stream(timeout=EVENTUALLY_S)
        read, sent = [], []

        def six_decisions() -> bool:
            samples, _ = decisions.pull_chunk(timeout=0.05)
            read.extend(read_decision(s) for s in samples)
            labels, stamps = markers.pull_chunk(timeout=0.0)
            sent.extend((t, label) for (label,), t in zip(labels, stamps, strict=True))
            return len(read) >= 6 and bool(sent) and read[-1].marker_time > sent[0][0] + 2.0

        wait_until(six_decisions, "six decisions, some on markers this consumer received")
        decisions.close_stream()
        markers.close_stream()
    finally:
        pipe.stop()
    by_index = {r.index: r for r in pipe.hub.since(-1)}
    for d in read:
        r = by_index[d.window]
        # The trial: a marker this consumer received itself, found by its label and time.
        assert d.marker in MARKED and d.marker == r.label
        if d.marker_time > sent[0][0] - CLOCK_SYNC_S:  # sent after this consumer connected
            assert any(m == d.marker and abs(t - d.marker_time) < CLOCK_SYNC_S
                       for t, m in sent)
        np.testing.assert_allclose(d.probabilities, r.probabilities, rtol=1e-6)
        top = int(np.argmax(d.probabilities))
        expected = r.class_names[top] if d.probabilities[top] >= 0.5 else "undecided"
        assert d.decision == r.decision == expected
        assert d.confidence == pytest.approx(d.probabilities[top], abs=1e-4)
    status = pipe.hub.status()
    assert status.inference.windows_decided + status.inference.windows_undecided == sum(
        r.probabilities is not None for r in pipe.hub.since(-1))


def test_an_overrun_stays_counted_as_lost(live, make_config, monkeypatch):
    name, _ = live
    pipe = Pipeline(make_config(name).override(**{"stream.buffer_seconds": 1.5})).start()
    try:
        wait_until(lambda: pipe.hub.status().windows_done >= 1, "windows_done >= 1")
        processing, ring = pipe.processing, pipe.processing.ring
        entered, release = threading.Event(), threading.Event()
        process = processing._process

        def held(position):  # the fault: processing stops for longer than the buffer holds
            if not entered.is_set():
                entered.set()
                release.wait(EVENTUALLY_S)
            process(position)

        monkeypatch.setattr(processing, "_process", held)
        wait_until(entered.is_set, "processing to be held")
        written = ring.n_written
        wait_until(lambda: ring.n_written > written + ring.capacity, "the ring to be lapped")
        release.set()
        wait_until(lambda: pipe.hub.status().processing.samples_skipped > 0, "the overrun")
        skipped = pipe.hub.status().samples_lost
        received = pipe.hub.status().samples_received
        # The inlet keeps reporting its own counts; the skipped samples stay in the total.
        wait_until(lambda: pipe.hub.status().samples_received > received + 250,
                   "a second more of samples")
        wait_until(lambda: pipe.hub.status().windows_done > 3, "windows after the overrun")
    finally:
        pipe.stop()
    status = pipe.hub.status()
    assert skipped >= ring.capacity // 2
    assert status.stream.samples_lost == 0 and status.gaps == 0  # the inlet lost nothing
    assert status.samples_lost == status.processing.samples_skipped == skipped


def test_a_recorded_run_keeps_every_prediction_across_a_swap_to_other_classes(
        marked, make_config, parity_classifier, tmp_path):
    """The swapped-in classes publish on a new outlet (another source_id): it is recorded
    from before its first prediction, the file holds every prediction of the run, and the
    session report reads both streams and scores each classifier's trials."""
    name = marked
    path = tmp_path / "run.xdf"
    first = _decoder_file(tmp_path, parity_classifier, _erp_spec(),
                          class_markers={"class0": ("stim-a",), "class1": ("stim-b",)})
    pipe = Pipeline(make_config(name).override(**{
        "record.path": str(path), "models.classifier": str(first),
        "markers.name": f"{name}-Markers"})).start()
    try:
        wait_until(lambda: sum(r.probabilities is not None for r in pipe.hub.since(-1)) >= 2,
                   "predictions of the first classifier")
        first_classes = pipe.models.classifier.class_names
        other = ("left", "right", "up", "down")
        pipe.swap_classifier(_decoder_file(tmp_path, parity_classifier, _erp_spec(),
                                           "other.pt", other,
                                           {"left": ("stim-a",), "right": ("stim-b",)}))
        wait_until(lambda: sum(r.class_names == other for r in pipe.hub.since(-1)) >= 3,
                   "predictions of the swapped-in classifier")
    finally:
        pipe.stop()
    # Starting the recorder takes seconds: markers are read from when the EEG is, so none
    # is lost to it (one may fall in the 0.2 s its window reaches before the first sample).
    assert pipe.hub.status().markers_skipped <= 1
    sent = [r for r in pipe.hub.since(-1) if r.probabilities is not None]
    streams, _ = pyxdf.load_xdf(str(path), dejitter_timestamps=False)
    recorded = {s["info"]["source_id"][0]: s for s in streams
                if s["info"]["type"][0] == "Predictions"}
    assert sorted(recorded) == [f"{name}-out-predictions", f"{name}-out-predictions-2"]
    for source_id, classes in ((f"{name}-out-predictions", first_classes),
                               (f"{name}-out-predictions-2", other)):
        stream = recorded[source_id]
        labels = [c["label"][0] for c in stream["info"]["desc"][0]["channels"][0]["channel"]]
        assert tuple(labels) == tuple(classes)
        mine = [r for r in sent if r.class_names == tuple(classes)]
        assert len(stream["time_stamps"]) == len(mine)
        np.testing.assert_array_equal(stream["time_series"],
                                      [np.float32(r.probabilities) for r in mine])
        np.testing.assert_allclose(stream["time_stamps"], [r.t_last for r in mine],
                                   atol=CLOCK_SYNC_S, rtol=0)
    session = load_session(path)
    assert [s.source_id for s in session.predictions] == sorted(recorded)
    # One Decisions stream for the run: each decision is scored by its own classifier.
    for scored, classes in zip(score_decisions(session), (first_classes, other), strict=True):
        mine = [r for r in sent if r.class_names == tuple(classes)]  # marker-locked: trials
        assert scored.scorer.class_names == tuple(classes)
        assert [(t.marker, t.decision) for t in scored.scorer.trials] == [
            (r.label, r.decision) for r in mine]
        np.testing.assert_allclose([t.marker_time for t in scored.scorer.trials],
                                   [r.marker_time for r in mine], atol=CLOCK_SYNC_S, rtol=0)
        assert scored.running[-1] == scored.scorer.balanced_accuracy()
    fig, caption = predictions_over_time(session)
    assert caption.startswith(f"{len(sent)} predictions on 2 streams")
    shown = [line for line in fig.axes[0].get_lines() if line.get_label().startswith("P(")]
    assert sum(len(line.get_xdata()) for line in shown) == sum(len(r.class_names) for r in sent)
    # A confusion matrix, a reliability diagram and its coverage curve for each classifier.
    for make, n_axes in ((confusion, 2), (reliability, 4)):
        of_each, caption_of_each = make(session)
        assert len(of_each.axes) == n_axes
        assert all(f"{s.source_id}: " in caption_of_each for s in session.predictions)
    swaps = [line for line in fig.axes[0].get_lines() if line.get_label() == "swap"]
    assert len(swaps) == 1
    assert swaps[0].get_xdata()[0] == pytest.approx(min(r.t_last for r in sent
                                                        if r.class_names == other)
                                                    - session.t0, abs=CLOCK_SYNC_S)
