"""``neurorvq-stream demo``: the bundled real recording replayed through the whole pipeline.

Self-contained: the replay and the pipeline talk over the shipped loopback-only LSL
configuration (unless the user set ``LSLAPICFG``). ``--task checker`` is the closed loop
on the held-out recording, scored against its markers.
"""

from __future__ import annotations

import argparse
import uuid

from ._options import add_model_options, add_run_options, add_signal_options, config_from
from ._run import run_pipeline


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="replay the bundled BioSemi recording through the pipeline")
    p.add_argument("--speed", type=float, default=1.0, help="replay speed factor")
    p.add_argument("--screenshot", default=None, metavar="FILE",
                   help="run offscreen for --duration seconds, then save the window as PNG")
    p.add_argument("--task", choices=["checker"], default=None,
                   help="closed loop: replay the held-out recording (sub-s02) with its "
                        "markers, score the predictions read back from LSL against them "
                        "and compare with the offline evaluation")
    add_signal_options(p)
    add_model_options(p)
    add_run_options(p)
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from neurorvq_stream.streamer import use_loopback_config

    use_loopback_config()  # before pylsl loads: the demo's streams stay on this machine
    if args.task == "checker":
        from ._closed_loop import run_from_args

        return run_from_args(args)
    from neurorvq_stream.streamer import Player, bundled_recording, load_recording

    path = bundled_recording("s01")
    print(f"Loading {path.name} (BioSemi 128 ch, 256 Hz) ...")
    rec = load_recording(path, montage="biosemi128")
    name = f"NeuroRVQ-Demo-{uuid.uuid4().hex[:6]}"
    player = Player(rec, name=name, speed=args.speed, loop=True)
    player.start()
    config = config_from(args, **{"stream.name": name, "markers.name": f"{name}-Markers"})
    try:
        return run_pipeline(config, args.headless, args.duration, args.screenshot,
                            verbose=args.verbose)
    finally:
        player.stop()
