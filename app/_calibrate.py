"""``neurorvq-stream calibrate``: labelled epochs from live streams -> a classifier file.

Takes the same stream, window and preprocessing flags (and ``--config``) as ``run``, so
the classifier is trained on exactly the windows ``run`` will give it.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ._options import add_record_option, add_signal_options, add_stream_options, config_from


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("calibrate", help="record labelled epochs from live streams, "
                       "fine-tune a classification head and save it with its card")
    add_stream_options(p)
    add_signal_options(p)
    g = p.add_argument_group("calibration")
    g.add_argument("--classes", nargs="+", required=True, help="marker labels to learn")
    g.add_argument("--n-per-class", type=int, default=40, help="epochs to collect per class")
    g.add_argument("--output", type=Path, required=True, help="classifier file to write")
    g.add_argument("--foundation-model", type=Path, default=None,
                   help="foundation model to fine-tune (default: the shipped one)")
    g.add_argument("--timeout", type=float, default=None, help="give up after S seconds")
    add_record_option(g)
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from neurorvq_stream.training.calibrate import calibrate

    config = config_from(args, **{"windows.mode": "markers"})
    path = calibrate(config, args.classes, args.n_per_class, args.output,
                     args.foundation_model, args.timeout)
    print(f"Saved calibrated head to {path}. A pipeline running with --classifier {path} "
          "picks up later re-calibrations of that file without restarting.")
    return 0
