"""Frame time of the live display for 20, 64 and 128 channels, offscreen.

Each frame publishes one new window of real EEG (the bundled BioSemi-128 recording) into
a ``ResultHub`` and times what the Qt thread does for it: ``MainWindow.refresh()``
(ingest + set curve data) plus the event processing that paints what changed. That is a
worst case: the pipeline publishes 2 windows a second, the display refreshes 30 times.

With ``--pipeline`` a real pipeline runs in the same process meanwhile (player replaying
the recording on loopback LSL -> Pipeline with the parity checkpoints), competing for the
CPU and the GIL as it does under ``neurorvq-stream demo``.

    python benchmarks/bench_display.py [--quick] [--pipeline]
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import time
import uuid
from contextlib import contextmanager
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
REPO = Path(__file__).resolve().parents[1]
# loopback-only LSL, set before pylsl is imported
os.environ.setdefault("LSLAPICFG", str(REPO / "streamer" / "lsl_api_loopback.cfg"))

import mne  # noqa: E402
import numpy as np  # noqa: E402
from pyqtgraph.Qt import QtWidgets  # noqa: E402

from neurorvq_stream.gui import MainWindow  # noqa: E402
from neurorvq_stream.streamer._results import ResultHub, WindowResult  # noqa: E402

RATE = 200
N_PATCHES = 4
HOP = RATE // 2


def load_eeg(seconds: float) -> np.ndarray:
    """(128, n) microvolts at 200 Hz from the recording pylossless ships."""
    spec = importlib.util.find_spec("pylossless")
    if spec is None or spec.origin is None:
        raise SystemExit("The benchmark replays pylossless's bundled EEG: pip install pylossless")
    path = Path(spec.origin).parent / "assets/test_data/sub-s01/eeg/sub-s01_task-faceO_eeg.edf"
    raw = mne.io.read_raw_edf(path, preload=True, verbose=False)
    raw.crop(0.0, seconds).resample(RATE, verbose=False)
    return (raw.get_data() * 1e6).astype(np.float32)


def make_results(eeg: np.ndarray, n_channels: int, n_windows: int) -> list[WindowResult]:
    """Successive windows (hop 0.5 s) with tokens, reconstruction, probabilities, latencies."""
    rng = np.random.default_rng(0)
    names = tuple(f"E{k + 1}" for k in range(n_channels))
    size = N_PATCHES * RATE
    results = []
    for k in range(n_windows):
        end = size + (k * HOP) % (eeg.shape[1] - size)
        signal = eeg[:n_channels, end - size : end]
        results.append(
            WindowResult(
                index=k,
                t_last=1000.0 + k * HOP / RATE,
                channels=names,
                source_channels=names,
                signal=signal,
                n_patches=N_PATCHES,
                tokens=rng.integers(0, 8192, size=(4, 8, n_channels * N_PATCHES)),
                reconstruction=0.8 * signal,
                probabilities=rng.dirichlet(np.ones(4)).astype(np.float32),
                class_names=("face", "house", "left", "right"),
                latency={"preprocess": 2.0, "tokenize": 50.0, "classify": 20.0},  # ms
                markers=((1000.0 + k * HOP / RATE - 0.2, "face"),) if k % 4 == 0 else (),
            )
        )
    return results


def bench(app: QtWidgets.QApplication, eeg: np.ndarray, n_channels: int, n_frames: int) -> dict:
    hub = ResultHub()
    window = MainWindow(hub)
    window.show()
    results = make_results(eeg, n_channels, n_frames + 40)
    for result in results[:40]:  # fill the 10 s scroll buffer first
        hub.publish(result)
    window.refresh()
    app.processEvents()
    times = []
    for result in results[40:]:
        hub.publish(result)
        started = time.perf_counter()
        window.refresh()
        app.processEvents()  # paints what the refresh invalidated
        times.append(time.perf_counter() - started)
    window.close()
    ms = np.array(times) * 1e3
    return {
        "channels": n_channels,
        "points/curve": int(window.signals.signal_curve.xData.size),
        "median_ms": float(np.median(ms)),
        "p95_ms": float(np.percentile(ms, 95)),
        "fps": float(1e3 / np.median(ms)),
    }


@contextmanager
def running_pipeline(n_channels: int):
    """Player + Pipeline on loopback with the parity checkpoints; yields the pipeline."""
    from neurorvq_stream.streamer import (
        Pipeline,
        Player,
        Recording,
        RunConfig,
        bundled_recording,
        load_recording,
    )

    full = load_recording(bundled_recording(1), montage="biosemi128", tmin=0.0, tmax=120.0)
    recording = Recording(
        full.data[:, :n_channels], full.sfreq, full.channels[:n_channels], full.events
    )
    name = f"bench-{uuid.uuid4().hex[:8]}"
    player = Player(recording, name=name, loop=True)
    player.start()
    fixtures = REPO / "tests" / "fixtures" / "parity_v1"
    config = RunConfig.from_dict(
        {
            "stream": {"name": name},
            "markers": {"name": f"{name}-Markers"},
            "models": {
                "tokenizer": str(fixtures / "tokenizer.pt"),
                "classifier": str(fixtures / "foundation_model.pt"),
                "watch_classifier": False,
            },
            "outlets": {"source_id": f"{name}-out"},
        }
    )
    pipeline = Pipeline(config).start()
    try:
        yield pipeline
    finally:
        pipeline.stop()
        player.stop()


def live(app: QtWidgets.QApplication, pipeline, seconds: float) -> dict:
    """The display as the application runs it: 30 Hz QTimer on the pipeline's hub."""
    window = MainWindow(pipeline.hub)
    window.show()
    ticks = []
    window.timer.timeout.connect(lambda: ticks.append(time.perf_counter()))
    before = pipeline.hub.status()
    draw_ms = []
    drawn = window.frames_drawn
    window.start()
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        app.processEvents()
        if window.frames_drawn != drawn:
            drawn = window.frames_drawn
            draw_ms.append(window.last_frame_s * 1e3)
        time.sleep(0.002)
    window.timer.stop()
    after = pipeline.hub.status()
    window.close()
    return {
        "channels": len(after.mapping),
        "ticks/s": len(ticks) / seconds,
        "draws": len(draw_ms),
        "draw_median_ms": float(np.median(draw_ms)) if draw_ms else float("nan"),
        "windows": after.windows_done - before.windows_done,
        "dropped": after.windows_dropped - before.windows_dropped,
        "misses": after.deadline_misses - before.deadline_misses,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="60 frames per size instead of 300")
    parser.add_argument(
        "--pipeline", action="store_true", help="run a live 64-channel pipeline meanwhile"
    )
    args = parser.parse_args()
    n_frames = 60 if args.quick else 300
    app = QtWidgets.QApplication.instance() or QtWidgets.QApplication([])
    eeg = load_eeg(60.0)
    if args.pipeline:
        with running_pipeline(64) as pipeline:
            time.sleep(3.0)  # first windows out, engines warm
            alone_s = 5.0 if args.quick else 20.0
            start = pipeline.hub.status()
            time.sleep(alone_s)  # baseline: the pipeline with no display
            before = pipeline.hub.status()
            rows = [bench(app, eeg, n, n_frames) for n in (20, 64, 128)]
            after = pipeline.hub.status()
            run = live(app, pipeline, 5.0 if args.quick else 20.0)
        print(
            f"pipeline alone for {alone_s:.0f} s: {before.windows_done - start.windows_done} "
            f"windows, {before.windows_dropped - start.windows_dropped} dropped, "
            f"{before.deadline_misses - start.deadline_misses} deadline misses"
        )
        print(
            f"pipeline during the worst-case frames: {after.windows_done - before.windows_done} "
            f"windows, {after.windows_dropped - before.windows_dropped} dropped, "
            f"{after.deadline_misses - before.deadline_misses} deadline misses "
            f"({after.engine.split(',')[0]})"
        )
        print(
            f"live display on the pipeline ({run['channels']} mapped channels, 30 Hz timer): "
            f"{run['ticks/s']:.1f} refreshes/s, {run['draws']} draws of "
            f"{run['draw_median_ms']:.1f} ms median; pipeline {run['windows']} windows, "
            f"{run['dropped']} dropped, {run['misses']} deadline misses"
        )
    else:
        rows = [bench(app, eeg, n, n_frames) for n in (20, 64, 128)]
    print(f"display frame time, offscreen, {n_frames} frames, window 1600x950, 10 s at 200 Hz")
    print(f"{'channels':>8} {'points/curve':>12} {'median ms':>10} {'p95 ms':>8} {'frames/s':>9}")
    for row in rows:
        print(
            f"{row['channels']:>8} {row['points/curve']:>12} {row['median_ms']:>10.1f} "
            f"{row['p95_ms']:>8.1f} {row['fps']:>9.1f}"
        )


if __name__ == "__main__":
    main()
