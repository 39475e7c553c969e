"""End-to-end latency of the live pipeline, next to bare pylsl loopback latency.

For each (channels, rate): a *source* process streams synthetic EEG on LSL (the project's
player, regular clock, 10 ms chunks), this process runs the ``Pipeline``, and a *reader*
process reads ``NeuroRVQ-Predictions`` with a plain pylsl inlet, recording when each
prediction arrives. The reader also reads the source EEG stream itself, which gives the
bare loopback latency (arrival - stamp of the newest sample) in the same run.

End-to-end latency = arrival of the prediction - its stamp (source time of the window's
last 200 Hz sample). Pipeline overhead = end-to-end - inference time of that window -
the time it waited in the mailbox while the previous window's inference ran (only when
inference is slower than about a hop) - the resampler's fixed look-ahead
(``Preprocessor.resampler_latency_s``); each is printed on its own. What remains is what
our threads, outlets and LSL add. Everything runs on loopback.

With ``--recording`` every configuration runs twice, without and then with LabRecorder
(``streamer._recorder.Recorder``) recording the source EEG and the pipeline's outlets, and a
last table gives the recorder's overhead side by side: end-to-end p99 and the acquisition
thread's CPU share with and without it, and the CPU LabRecorder's own process used.

    python benchmarks/bench_pipeline.py --quick          # 3 configurations x 15 s
    python benchmarks/bench_pipeline.py --seconds 60     # 3 x 3 configurations x 60 s
    python benchmarks/bench_pipeline.py --quick --recording
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import sys
import tempfile
import time
import uuid
from pathlib import Path

import numpy as np

from neurorvq_stream.streamer import use_loopback_config

REPO = Path(__file__).resolve().parents[1]
FIXTURES = REPO / "tests" / "fixtures" / "parity_v1"
TEN_TWENTY = "fp1 fp2 f7 f3 fz f4 f8 t7 c3 cz c4 t8 p7 p3 pz p4 p8 o1 oz o2".split()  # noqa: SIM905


def _labels(n_channels: int) -> tuple[list[str], str | None]:
    """10-20 names for 20 channels, NeuroRVQ names for 64, BioSemi A1..D32 for 128."""
    if n_channels <= len(TEN_TWENTY):
        return TEN_TWENTY[:n_channels], None
    if n_channels <= 96:
        from neurorvq_stream.engines import ELECTRODES

        usable = [e for e in ELECTRODES if e not in ("eog", "loc", "roc", "a1", "a2")]
        return list(usable[:n_channels]), None
    return [f"{b}{k}" for b in "ABCD" for k in range(1, 33)][:n_channels], "biosemi128"


def _source(name: str, n_channels: int, rate: float, seconds: float) -> None:
    use_loopback_config()
    from neurorvq_stream.streamer import Player, Recording
    from neurorvq_stream.streamer._lsl import ChannelInfo

    labels, _ = _labels(n_channels)
    rng = np.random.default_rng(0)
    n = int(rate * 10)
    t = np.arange(n) / rate
    data = 15 * rng.standard_normal((n, n_channels)) + 20 * np.sin(2 * np.pi * 10 * t)[:, None]
    rec = Recording(
        data.astype(np.float32), rate, [ChannelInfo(lab, "microvolts", "EEG") for lab in labels], []
    )
    player = Player(rec, name=name, loop=True, chunk_seconds=0.01)
    player.start()
    player.join(seconds)
    player.stop()


def _reader(name: str, source_id: str, seconds: float, out: mp.Queue) -> None:
    use_loopback_config()
    import pylsl

    def open_inlet(prop: str, value: str) -> pylsl.StreamInlet:
        (info,) = pylsl.resolve_byprop(prop, value, timeout=30.0)
        inlet = pylsl.StreamInlet(info, processing_flags=pylsl.proc_clocksync)
        inlet.open_stream(timeout=10.0)
        inlet.time_correction(timeout=10.0)
        inlet.flush()
        return inlet

    eeg = open_inlet("name", name)
    preds = open_inlet("source_id", f"{source_id}-predictions")
    arrivals, stamps, bare = [], [], []
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        _, ts = preds.pull_chunk(timeout=0.0, as_numpy=True)
        now = pylsl.local_clock()
        arrivals += [now] * len(ts)
        stamps += list(ts)
        _, ts = eeg.pull_chunk(timeout=0.0, max_samples=4096, as_numpy=True)
        if len(ts):
            bare.append(pylsl.local_clock() - ts[-1])
        time.sleep(0.001)
    out.put((np.array(arrivals), np.array(stamps), np.array(bare)))


def _percentiles(values_ms: np.ndarray) -> str:
    if values_ms.size == 0:
        return f"{'-':>7}{'-':>7}{'-':>7}{'-':>7}"
    p = np.percentile(values_ms, [50, 95, 99])
    return f"{p[0]:7.1f}{p[1]:7.1f}{p[2]:7.1f}{values_ms.max():7.1f}"


def _start_recorder(folder: Path, name: str, source_id: str) -> tuple[object, object, float]:
    """LabRecorder on the source EEG and both outlets; with its process for CPU accounting."""
    import psutil

    from neurorvq_stream.streamer import Recorder
    from neurorvq_stream.streamer._recorder import StreamQuery

    queries = [StreamQuery(name=name), StreamQuery(source_id=f"{source_id}-predictions"),
               StreamQuery(source_id=f"{source_id}-metrics")]
    recorder = Recorder(folder / f"{name}.xdf", queries).start()
    process = psutil.Process(recorder.pid)
    cpu = process.cpu_times()
    return recorder, process, cpu.user + cpu.system


def run_one(
    n_channels: int, rate: float, seconds: float, tokenizer: str, classifier: str, engine: str,
    record_to: Path | None = None,
) -> tuple[str, dict[str, float]]:
    """One configuration: its table row, and the numbers the recording comparison needs."""
    from neurorvq_stream.streamer import Pipeline, ResultHub, RunConfig

    tag = uuid.uuid4().hex[:6]
    name, source_id = f"bench-{n_channels}x{rate:g}-{tag}", f"bench-out-{tag}"
    ctx = mp.get_context("spawn")
    warm = 25.0  # start-up of the pipeline (engine load + warm-up) and of the reader
    src = ctx.Process(target=_source, args=(name, n_channels, rate, seconds + 2 * warm))
    src.start()
    _, montage = _labels(n_channels)
    config = RunConfig.from_dict(
        {
            "stream": {"name": name, "resolve_timeout": 30.0},
            "mapping": {"montage": montage},
            "models": {"tokenizer": tokenizer, "classifier": classifier, "watch_classifier": False},
            "engine": engine,
            "outlets": {"source_id": source_id, "tokens": False, "reconstruction": False},
        }
    )
    hub = ResultHub(history=100_000)
    pipe = Pipeline(config, hub).start()
    if record_to is not None:
        recorder, rec_process, rec_cpu0 = _start_recorder(record_to, name, source_id)
        rec_wall0 = time.perf_counter()
    queue: mp.Queue = ctx.Queue()
    reader = ctx.Process(target=_reader, args=(name, source_id, seconds, queue))
    reader.start()
    arrivals, stamps, bare = queue.get(timeout=seconds + 2 * warm)
    recorder_share = float("nan")
    if record_to is not None:
        cpu = rec_process.cpu_times()
        recorder_share = (cpu.user + cpu.system - rec_cpu0) / (time.perf_counter() - rec_wall0)
        recorder.stop()
    acq = pipe.acquisition
    cpu_share = acq.cpu_seconds / max(acq.wall_seconds, 1e-9)
    lag_ms = pipe._pre.resampler_latency_s * 1e3
    pipe.stop()
    reader.join(5.0)
    src.terminate()
    src.join(5.0)
    status = hub.status()
    results = hub.since(-1)
    t_last = np.array([r.t_last for r in results])
    e2e, infer, wait = [], [], []
    for arrival, stamp in zip(arrivals, stamps, strict=True):
        # The reader's clock-offset estimate differs from ours by microseconds.
        k = int(np.argmin(np.abs(t_last - stamp))) if t_last.size else -1
        if k >= 0 and abs(t_last[k] - stamp) < 1e-3:
            e2e.append((arrival - stamp) * 1e3)
            infer.append(results[k].latency["inference"])
            wait.append(results[k].latency["wait"])
    e2e_ms, infer_ms, wait_ms = np.array(e2e), np.array(infer), np.array(wait)
    overhead = e2e_ms - infer_ms - wait_ms - lag_ms
    numbers = {"p99": float(np.percentile(e2e_ms, 99)) if e2e_ms.size else float("nan"),
               "acq": 100 * cpu_share, "recorder": 100 * recorder_share}
    return (
        f"{'on' if record_to else 'off':>4}{n_channels:>5}{rate:>6g}{len(e2e_ms):>6}  "
        f"{_percentiles(e2e_ms)}  "
        f"{_percentiles(infer_ms)}  {_percentiles(wait_ms)}  {_percentiles(overhead)}  "
        f"{_percentiles(bare * 1e3)}"
        f"{lag_ms:7.1f}{status.deadline_misses:>6}{status.samples_lost:>6}"
        f"{100 * cpu_share:7.1f}"
    ), numbers


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--seconds",
        type=float,
        default=None,
        help="measured seconds per run (default 60, 15 with --quick)",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="3 configurations (20x256, 64x1000, 128x512) instead of 9",
    )
    parser.add_argument("--tokenizer", default=str(FIXTURES / "tokenizer.pt"))
    parser.add_argument("--classifier", default=str(FIXTURES / "foundation_model.pt"))
    parser.add_argument("--engine", default="auto")
    parser.add_argument("--recording", action="store_true",
                        help="run each configuration without and with LabRecorder recording")
    args = parser.parse_args(argv)
    use_loopback_config()
    if args.quick:
        configs = [(20, 256.0), (64, 1000.0), (128, 512.0)]
    else:
        configs = [(c, r) for c in (20, 64, 128) for r in (256.0, 512.0, 1000.0)]
    seconds = args.seconds or (15.0 if args.quick else 60.0)
    print(
        f"Pipeline latency, {seconds:g} s per run, models {Path(args.tokenizer).name} + "
        f"{Path(args.classifier).name}, engine {args.engine}, windows 4 x 1 s every 0.5 s."
    )
    print("Columns (ms): p50 p95 p99 max. wait = in the mailbox behind the previous inference;"
          " overhead = end-to-end - inference - wait - resampler lag.")
    head = "  p50    p95    p99    max"
    print(
        f"{'rec':>4}{'ch':>5}{'Hz':>6}{'n':>6}  {'end-to-end':^28}  {'inference':^28}  "
        f"{'wait':^28}  {'overhead':^28}  {'bare pylsl':^28}"
        f"{'lag':>7}{'miss':>6}{'lost':>6}{'acq%':>7}"
    )
    print(f"{'':21}" + f"  {head:>28}" * 5)
    compared = []
    with tempfile.TemporaryDirectory(prefix="bench-recording-") as folder:
        for n_channels, rate in configs:
            runs = []
            for record_to in ([None, Path(folder)] if args.recording else [None]):
                row, numbers = run_one(n_channels, rate, seconds, args.tokenizer,
                                       args.classifier, args.engine, record_to)
                print(row, flush=True)
                runs.append(numbers)
            if args.recording:
                compared.append((n_channels, rate, *runs))
    if compared:
        print("\nRecording overhead (same run; acq% = acquisition thread CPU / wall time, "
              "LabRecorder% = its process's CPU / wall time, of one core):")
        print(f"{'ch':>4}{'Hz':>6}{'p99 off':>9}{'p99 on':>8}{'ratio':>7}"
              f"{'acq% off':>10}{'acq% on':>9}{'ratio':>7}{'LabRecorder%':>14}")
        for n_channels, rate, off, on in compared:
            print(f"{n_channels:>4}{rate:>6g}{off['p99']:9.1f}{on['p99']:8.1f}"
                  f"{on['p99'] / off['p99']:7.2f}{off['acq']:10.2f}{on['acq']:9.2f}"
                  f"{on['acq'] / off['acq']:7.2f}{on['recorder']:14.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
