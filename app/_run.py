"""``neurorvq-stream run``: the live pipeline on an LSL stream, with display or status line."""

from __future__ import annotations

import argparse
import os
from typing import TYPE_CHECKING

from ._console import print_status_lines, summary
from ._options import (
    add_model_options,
    add_run_options,
    add_signal_options,
    add_stream_options,
    config_from,
)

if TYPE_CHECKING:
    from neurorvq_stream.streamer import RunConfig


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("run", help="run the live pipeline on an LSL EEG stream")
    add_stream_options(p)
    add_signal_options(p)
    add_model_options(p)
    add_run_options(p)
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from neurorvq_stream.streamer import find_streams, format_stream_list

    config = config_from(args)
    s = config.stream
    if s.name is None and s.source_id is None and s.type is None:
        print(format_stream_list(find_streams(timeout=1.0)))
        print("No stream chosen: pick one with `neurorvq-stream run --stream NAME` "
              "(or --source-id ID, or stream.name in --config).")
        return 2
    return run_pipeline(config, args.headless, args.duration)


def has_screen() -> bool:
    """A real screen to open the display on (offscreen Qt is not one)."""
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def run_pipeline(config: RunConfig, headless: bool, duration: float | None,
                 screenshot: str | None = None) -> int:
    """Start the pipeline, show it until ``duration`` or Ctrl-C, print the summary.

    Returns 1 when a pipeline thread died during the run (the summary names it), else 0.
    """
    from neurorvq_stream.streamer import Pipeline, ResultHub

    hub = ResultHub()
    pipeline = Pipeline(config, hub)
    print(f"Starting on stream {config.stream.name or config.stream.source_id!r} ...")
    pipeline.start()
    try:
        if pipeline.mapping is not None:
            print(pipeline.mapping.describe())
        print(f"Engine: {hub.status().engine}")
        if pipeline.outlets is not None:
            print("Outlets: " + ", ".join(pipeline.outlets.names))
        if screenshot is not None or (not headless and has_screen()):
            from neurorvq_stream.gui import run_display  # offscreen by itself for a screenshot

            run_display(hub, hub.status, duration_s=duration, screenshot=screenshot)
        else:
            if not headless:
                print("No screen found (DISPLAY/WAYLAND_DISPLAY unset): running headless.")
            print_status_lines(hub, lambda: pipeline.running, duration)
    except KeyboardInterrupt:
        pass
    finally:
        pipeline.stop()
    print(summary(hub))
    return 1 if hub.status().failed else 0
