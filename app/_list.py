"""``neurorvq-stream list``: the LSL streams in reach (imports pylsl only)."""

from __future__ import annotations

import argparse


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("list", help="list the LSL streams in reach")
    p.add_argument("--timeout", type=float, default=1.0, help="seconds to wait for answers")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from neurorvq_stream.streamer._lsl import find_streams, format_stream_list

    print(format_stream_list(find_streams(timeout=args.timeout)))
    return 0
