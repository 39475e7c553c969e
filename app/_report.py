"""``neurorvq-stream report``: an HTML report (mne.Report) of a recorded session."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("report", help="write an HTML report with figures of a recorded "
                       "session (an XDF file from --record)")
    p.add_argument("file", type=Path, help="session recording (.xdf)")
    p.add_argument("-o", "--output", type=Path, default=None,
                   help="HTML file to write (default: next to the recording)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from neurorvq_stream.report import make_report

    html = args.output or args.file.with_suffix(".html")
    path = make_report(args.file, html, progress=not args.no_progress)
    print(f"Report written to {path}.")
    return 0
