"""``neurorvq-stream calibrate``: labelled epochs (live or from a file) -> the best decoder.

Takes the same stream, window and preprocessing flags (and ``--config``) as ``run``, so
the decoders are trained on exactly the windows ``run`` will give them; the saved file
carries that window spec.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ._options import add_record_option, add_signal_options, add_stream_options, config_from


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("calibrate", help="train the decoder set on labelled epochs (live or "
                       "from a recording), print their cross-validated scores, save the best")
    add_stream_options(p)
    add_signal_options(p)
    g = p.add_argument_group("calibration")
    g.add_argument("--classes", nargs="+", required=True, metavar="CLASS",
                   help="classes to learn: marker labels, or NAME=LABEL,LABEL to group "
                   "several markers into one class")
    g.add_argument("--output", type=Path, required=True,
                   help="decoder file to write (its suffix becomes .skops or .safetensors, "
                   "as the chosen decoder needs)")
    g.add_argument("--recording", type=Path, default=None,
                   help="read the epochs from a recording with markers (EDF/BDF/FIF/XDF) "
                   "instead of live streams")
    g.add_argument("--decoders", nargs="+", default=None, metavar="KIND",
                   help="decoder kinds to train (default: all but neurorvq-head-full)")
    g.add_argument("--decoder", default=None, metavar="KIND",
                   help="save this kind whatever the cross-validation says")
    g.add_argument("--full-finetune", action="store_true",
                   help="also fine-tune the whole NeuroRVQ model (minutes per fold on a CPU)")
    g.add_argument("--foundation-model", type=Path, default=None,
                   help="NeuroRVQ foundation model for the neurorvq kinds (default: shipped)")
    g.add_argument("--n-per-class", type=int, default=None,
                   help="live: stop once every class has N epochs (more are kept)")
    g.add_argument("--duration", type=float, default=None,
                   help="live: record for S seconds (default: until Ctrl+C)")
    g.add_argument("--timeout", type=float, default=None,
                   help="live: give up after S seconds without --n-per-class epochs")
    g.add_argument("--seed", type=int, default=0, help="seed of the folds and the heads")
    add_record_option(g)
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from neurorvq_stream.decoders import KINDS
    from neurorvq_stream.training.calibrate import DEFAULT_KINDS, calibrate, parse_classes

    kinds = tuple(args.decoders or DEFAULT_KINDS)
    if args.full_finetune and "neurorvq-head-full" not in kinds:
        kinds = (*kinds, "neurorvq-head-full")
    unknown = [k for k in (*kinds, args.decoder) if k is not None and k not in KINDS]
    if unknown:
        raise ValueError(f"Unknown decoder kind(s) {unknown}; the kinds are: "
                         f"{', '.join(KINDS)}.")
    if args.n_per_class is not None and args.n_per_class < 2:
        raise ValueError(f"--n-per-class must be >= 2, got {args.n_per_class}.")
    live = args.recording is None
    if live and args.n_per_class is None and args.duration is None:
        print("Recording labelled epochs; press Ctrl+C to stop and train.")
    # Live epochs are marker-locked windows of the pipeline; a file's markers need no stream.
    config = config_from(args, **({"windows.mode": "markers"} if live else {}))
    result = calibrate(
        config, parse_classes(args.classes), args.output, recording=args.recording,
        kinds=kinds, decoder=args.decoder, foundation_model=args.foundation_model,
        n_per_class=args.n_per_class, duration=args.duration, timeout=args.timeout,
        seed=args.seed,
    )
    print(result.table())
    if result.rejected_line():
        print(result.rejected_line())
    print(f"\nSaved {result.chosen.kind} to {result.path}: {result.reason}.")
    print(f"Window spec: {result.chosen.epochs.spec.describe()}.")
    print(f"Run it with: neurorvq-stream run --classifier {result.path} (a pipeline already "
          "running on that file swaps it in).")
    return 0
