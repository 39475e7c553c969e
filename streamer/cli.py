"""``neurorvq-stream``: list streams, play a file, run the live pipeline, or a demo.

One ``add_<name>`` function per subcommand registers its options and its handler, so a
new subcommand (``calibrate``) or option (``demo --task``) is one more function or line.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from ._config import RunConfig
from ._results import ResultHub

logger = logging.getLogger("neurorvq_stream")


# ------------------------------------------------------------------ list
def add_list(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser("list", help="list the LSL streams in reach")
    p.add_argument("--timeout", type=float, default=1.0, help="seconds to wait for answers")
    p.set_defaults(handler=cmd_list)
    return p


def cmd_list(args: argparse.Namespace) -> int:
    from ._lsl import find_streams, format_stream_list

    print(format_stream_list(find_streams(timeout=args.timeout)))
    return 0


# ------------------------------------------------------------------ play
def add_play(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser("play", help="replay an EDF/BDF/FIF/XDF file as live LSL streams")
    p.add_argument("file", help="recording to replay")
    p.add_argument("--speed", type=float, default=1.0, help="replay speed factor")
    p.add_argument("--loop", action="store_true", help="start over at the end")
    p.add_argument("--name", default=None, help="stream name (default: file name)")
    p.add_argument("--montage", default=None, help="mne montage for positions, e.g. biosemi128")
    p.add_argument("--duration", type=float, default=None, help="stop after S seconds")
    p.set_defaults(handler=cmd_play)
    return p


def cmd_play(args: argparse.Namespace) -> int:
    from ._player import Player, load_recording

    rec = load_recording(args.file, montage=args.montage)
    name = args.name or Path(args.file).stem
    player = Player(rec, name=name, speed=args.speed, loop=args.loop, progress=True)
    print(f"Playing {args.file} as {name!r} ({rec.data.shape[1]} ch @ {rec.sfreq:g} Hz, "
          f"{len(rec.events)} markers on {name}-Markers), speed x{args.speed:g}. Ctrl-C stops.")
    player.start()
    _wait(player.is_alive, args.duration)
    player.stop()
    return 0


# ------------------------------------------------------------------ run
def _add_pipeline_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", default=None, help="YAML or TOML file with every setting")
    p.add_argument("--tokenizer", default=None, help="tokenizer checkpoint (.pt/.safetensors)")
    p.add_argument("--classifier", default=None, help="fine-tuned classifier checkpoint")
    p.add_argument("--engine", default=None, help="inference backend (default: auto)")
    p.add_argument("--montage", default=None, help="mne montage for coded caps, e.g. biosemi128")
    p.add_argument("--hop", type=float, default=None, help="seconds between windows")
    p.add_argument("--headless", action="store_true", help="no display: print a status line")
    p.add_argument("--duration", type=float, default=None, help="stop after S seconds")


def add_run(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser("run", help="run the live pipeline on an LSL EEG stream")
    p.add_argument("--stream", default=None, help="name of the EEG stream (see `list`)")
    p.add_argument("--source-id", default=None, help="source_id of the EEG stream")
    p.add_argument("--markers", default=None, help="name of a string marker stream")
    _add_pipeline_options(p)
    p.set_defaults(handler=cmd_run)
    return p


def _config_from(args: argparse.Namespace, **extra: object) -> RunConfig:
    base = RunConfig.from_file(args.config) if args.config else RunConfig()
    return base.override(**{
        "models.tokenizer": args.tokenizer,
        "models.classifier": args.classifier,
        "engine": args.engine,
        "mapping.montage": args.montage,
        "windows.hop": args.hop,
        **extra,
    })


def cmd_run(args: argparse.Namespace) -> int:
    from ._lsl import find_streams, format_stream_list

    config = _config_from(args, **{
        "stream.name": args.stream, "stream.source_id": args.source_id,
        "markers.name": args.markers,
    })
    s = config.stream
    if s.name is None and s.source_id is None and s.type is None:
        print(format_stream_list(find_streams(timeout=1.0)))
        print("No stream chosen: pick one with `neurorvq-stream run --stream NAME` "
              "(or --source-id ID, or stream.name in --config).")
        return 2
    return _run_pipeline(config, args.headless, args.duration)


def _run_pipeline(config: RunConfig, headless: bool, duration: float | None,
                  screenshot: str | None = None) -> int:
    from ._runner import Pipeline

    hub = ResultHub()
    pipeline = Pipeline(config, hub)
    print(f"Starting on stream {config.stream.name or config.stream.source_id!r} ...")
    pipeline.start()
    print(pipeline.mapping.describe())
    print(f"Engine: {hub.status().engine}")
    try:
        if screenshot is not None or (not headless and _has_screen()):
            from gui import run_display  # renders offscreen by itself for a screenshot

            run_display(hub, hub.status, duration_s=duration, screenshot=screenshot)
        else:
            if not headless:
                print("No screen found (DISPLAY/WAYLAND_DISPLAY unset): running headless.")
            _status_lines(hub, lambda: pipeline.running, duration)
    except KeyboardInterrupt:
        pass
    finally:
        pipeline.stop()
    print(latency_summary(hub))
    return 0


def _has_screen() -> bool:
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")
                or os.environ.get("QT_QPA_PLATFORM") == "offscreen")


def _wait(alive: Callable[[], bool], duration: float | None,
          tick: Callable[[], None] | None = None) -> None:
    end = time.monotonic() + duration if duration is not None else float("inf")
    try:
        while alive() and time.monotonic() < end:
            time.sleep(0.5)
            if tick is not None:
                tick()
    except KeyboardInterrupt:
        pass


def _status_lines(hub: ResultHub, alive: Callable[[], bool], duration: float | None) -> None:
    def tick() -> None:
        s = hub.status()
        latest = hub.latest()
        e2e = latest.latency.get("end_to_end", float("nan")) if latest else float("nan")
        top = ""
        if latest is not None and latest.probabilities is not None:
            k = int(np.argmax(latest.probabilities))
            top = f" | {latest.class_names[k]} {latest.probabilities[k]:.2f}"
        line = (f"\r[{s.stream_state}] windows {s.windows_done} dropped {s.windows_dropped} "
                f"late {s.deadline_misses} errors {s.inference_errors} lost {s.samples_lost} "
                f"| e2e {e2e:.0f} ms{top}   ")
        sys.stdout.write(line)
        sys.stdout.flush()

    _wait(alive, duration, tick)
    print()


def latency_summary(hub: ResultHub) -> str:
    """Percentiles of each latency stage over the kept history, and the final counters."""
    results = hub.since(-1)
    s = hub.status()
    lines = [f"Windows done {s.windows_done}, dropped {s.windows_dropped}, deadline misses "
             f"{s.deadline_misses}, inference errors {s.inference_errors}, samples lost "
             f"{s.samples_lost}, gaps {s.gaps}, stalls {s.stalls}."]
    if not results:
        return lines[0] + " No window was processed."
    lines.append(f"{'latency (ms)':<14}{'p50':>8}{'p95':>8}{'p99':>8}{'max':>8}")
    for stage in ("preprocess", "wait", "inference", "publish", "end_to_end"):
        values = np.array([r.latency[stage] for r in results if stage in r.latency])
        if values.size:
            p50, p95, p99 = np.percentile(values, [50, 95, 99])
            lines.append(f"{stage:<14}{p50:8.1f}{p95:8.1f}{p99:8.1f}{values.max():8.1f}")
    return "\n".join(lines)


# ------------------------------------------------------------------ demo
def add_demo(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = sub.add_parser("demo", help="replay the bundled BioSemi recording through the pipeline")
    p.add_argument("--speed", type=float, default=1.0, help="replay speed factor")
    p.add_argument("--screenshot", default=None, metavar="FILE",
                   help="run offscreen for --duration seconds, then save the window as PNG")
    p.add_argument("--task", choices=["checker"], default=None,
                   help="closed loop: replay the held-out recording (sub-s02) with its "
                        "markers, score the predictions read back from LSL against them "
                        "and compare with the offline evaluation")
    _add_pipeline_options(p)
    p.set_defaults(handler=cmd_demo)
    return p


def cmd_demo(args: argparse.Namespace) -> int:
    from ._lsl import use_loopback_config

    if args.task == "checker":
        return _closed_loop_demo(args)

    use_loopback_config()  # the demo is self-contained: keep its streams on this machine
    from ._player import Player, bundled_recording, load_recording

    path = bundled_recording()
    print(f"Loading {path.name} (BioSemi 128 ch, 256 Hz) ...")
    rec = load_recording(path, montage="biosemi128")
    name = f"NeuroRVQ-Demo-{uuid.uuid4().hex[:6]}"
    player = Player(rec, name=name, speed=args.speed, loop=True)
    player.start()
    config = _config_from(args, **{"stream.name": name, "markers.name": f"{name}-Markers"})
    try:
        return _run_pipeline(config, args.headless, args.duration, args.screenshot)
    finally:
        player.stop()


def _closed_loop_demo(args: argparse.Namespace) -> int:
    from training.closed_loop import run_checker_closed_loop

    tmax = None if args.duration is None else args.duration * args.speed
    print(f"Closed loop: replaying held-out sub-s02 at x{args.speed:g} through the live "
          "pipeline (marker-locked windows), scoring predictions read back from LSL ...")
    report = run_checker_closed_loop(
        speed=args.speed, tmax=tmax,
        classifier=Path(args.classifier) if args.classifier else None,
        tokenizer=Path(args.tokenizer) if args.tokenizer else None,
    )
    print(report.summary())
    if report.windows_dropped:
        print(f"warning: {report.windows_dropped} windows were dropped; replay slower "
              "(--speed) for a live score comparable with the offline one.")
        return 1
    return 0


# ------------------------------------------------------------------ calibrate
def add_calibrate(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    from training.calibrate import add_arguments, run_from_args

    p = sub.add_parser("calibrate", help="record labelled epochs from live streams, "
                       "fine-tune the classification head and save it with its card")
    add_arguments(p)
    p.set_defaults(handler=run_from_args)
    return p


# ------------------------------------------------------------------ entry point
SUBCOMMANDS: list[Callable[[argparse._SubParsersAction], argparse.ArgumentParser]] = [
    add_list, add_play, add_run, add_demo, add_calibrate,
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="neurorvq-stream",
        description="Real-time NeuroRVQ tokens, reconstructions and BCI predictions over LSL.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True)
    for add in SUBCOMMANDS:
        add(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Console entry point; returns the exit code."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    try:
        return int(args.handler(args))
    except (LookupError, FileNotFoundError, ValueError, KeyError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
