"""``neurorvq-stream play``: replay a recording file as live LSL EEG and marker streams."""

from __future__ import annotations

import argparse
from pathlib import Path

from ._console import wait_while


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("play", help="replay an EDF/BDF/FIF/XDF file as live LSL streams")
    p.add_argument("file", help="recording to replay")
    p.add_argument("--speed", type=float, default=1.0, help="replay speed factor")
    p.add_argument("--loop", action="store_true", help="start over at the end")
    p.add_argument("--name", default=None, help="stream name (default: file name)")
    p.add_argument("--montage", default=None, help="mne montage for positions, e.g. biosemi128")
    p.add_argument("--duration", type=float, default=None, help="stop after S seconds")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from neurorvq_stream.streamer import Player, load_recording

    rec = load_recording(args.file, montage=args.montage)
    name = args.name or Path(args.file).stem
    player = Player(rec, name=name, speed=args.speed, loop=args.loop, progress=True)
    print(f"Playing {args.file} as {name!r} ({rec.data.shape[1]} ch @ {rec.sfreq:g} Hz, "
          f"{len(rec.events)} markers on {name}-Markers), speed x{args.speed:g}. Ctrl-C stops.")
    player.start()
    wait_while(player.is_alive, args.duration)
    player.stop()
    return 0
