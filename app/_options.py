"""Command-line options shared by the commands, and how they become one ``RunConfig``.

``run``, ``demo`` and ``calibrate`` take the same flags for the stream, windows and
preprocessing, so a window spec written on one command line means the same on another;
every flag overrides the matching key of ``--config`` (flags left out change nothing).
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from neurorvq_stream.streamer import RunConfig


def add_stream_options(p: argparse.ArgumentParser) -> None:
    """Which LSL streams to open."""
    g = p.add_argument_group("streams")
    g.add_argument("--stream", default=None, help="name of the EEG stream (see `list`)")
    g.add_argument("--source-id", default=None, help="source_id of the EEG stream")
    g.add_argument("--markers", default=None,
                   help="name of the marker stream (strings, or mne-lsl's annotations)")
    g.add_argument("--unit", default=None,
                   help="unit the amplifier sends (V, mV, uV, nV, or a power-of-ten exponent of "
                   "volts as mne-lsl writes it: -6) when its metadata is wrong")


def add_signal_options(p: argparse.ArgumentParser) -> None:
    """Windows and preprocessing: the same on every command that cuts windows."""
    g = p.add_argument_group("windows and preprocessing")
    g.add_argument("--config", default=None, help="YAML or TOML file with every setting")
    g.add_argument("--montage", default=None, help="mne montage for coded caps, e.g. biosemi128")
    g.add_argument("--patches", type=int, default=None, help="window length in 1 s patches")
    g.add_argument("--hop", type=float, default=None, help="seconds between sliding windows")
    g.add_argument("--marker-offset", type=float, default=None,
                   help="marker-locked window start relative to the marker (s)")
    g.add_argument("--marker-length", type=int, default=None,
                   help="marker-locked window length in 1 s patches (default: --patches)")
    g.add_argument("--line-freq", type=float, default=None, help="mains frequency, 50 or 60 Hz")
    g.add_argument("--l-freq", type=float, default=None,
                   help="high-pass edge in Hz (0 for none: slow cortical potentials)")
    g.add_argument("--h-freq", type=float, default=None, help="low-pass edge in Hz")
    g.add_argument("--notch", action=argparse.BooleanOptionalAction, default=None,
                   help="notch filter at the mains frequency and its harmonics")
    g.add_argument("--reference", choices=["none", "average"], default=None,
                   help="re-reference the mapped channels (common average)")
    g.add_argument("--clip-uv", type=float, default=None,
                   help="clip preprocessed samples at +-this many uV")


def add_model_options(p: argparse.ArgumentParser) -> None:
    """Which models run and on which backend."""
    g = p.add_argument_group("models")
    g.add_argument("--tokenizer", default=None, help="tokenizer checkpoint (.pt/.safetensors)")
    g.add_argument("--classifier", default=None, help="classifier file (from `calibrate`)")
    g.add_argument("--engine", default=None, help="inference backend (default: auto)")
    g.add_argument("--adapt", action=argparse.BooleanOptionalAction, default=None,
                   help="re-centre the classifier's input on this session's own windows, "
                        "causally, without labels (adapt: in the config)")
    g.add_argument("--min-confidence", type=float, default=None, metavar="P",
                   help="decide only when the calibrated confidence reaches P (else "
                        "'undecided'; decisions.min_confidence)")


def add_record_option(p: argparse.ArgumentParser) -> None:
    """Record the session's streams to XDF (LabRecorder), as ``record.path`` does."""
    p.add_argument("--record", default=None, metavar="FILE.xdf",
                   help="record the EEG, markers and every outlet to this XDF file")


def add_run_options(p: argparse.ArgumentParser) -> None:
    """How long and where to show a run, and whether to record it."""
    g = p.add_argument_group("run")
    g.add_argument("--headless", action="store_true", help="no display: print a status line")
    g.add_argument("--duration", type=float, default=None, help="stop after S seconds")
    add_record_option(g)


def config_from(args: argparse.Namespace, **extra: object) -> RunConfig:
    """``--config`` (or the defaults) overridden by the flags that were given."""
    from neurorvq_stream.streamer import RunConfig

    base = RunConfig.from_file(args.config) if args.config else RunConfig()
    flags = {
        "stream.name": getattr(args, "stream", None),
        "stream.source_id": getattr(args, "source_id", None),
        "stream.unit": getattr(args, "unit", None),
        "markers.name": getattr(args, "markers", None),
        "mapping.montage": args.montage,
        "windows.n_patches": args.patches,
        "windows.hop": args.hop,
        "windows.marker_offset": args.marker_offset,
        "windows.marker_length": args.marker_length,
        "preprocessing.line_freq": args.line_freq,
        "preprocessing.l_freq": args.l_freq,
        "preprocessing.h_freq": args.h_freq,
        "preprocessing.notch": args.notch,
        "preprocessing.reference": args.reference,
        "preprocessing.clip_uv": args.clip_uv,
        "models.tokenizer": getattr(args, "tokenizer", None),
        "models.classifier": getattr(args, "classifier", None),
        "engine": getattr(args, "engine", None),
        "decisions.min_confidence": getattr(args, "min_confidence", None),
        "adapt": getattr(args, "adapt", None),
        "record.path": getattr(args, "record", None),
    }
    return base.override(**{**flags, **extra})
