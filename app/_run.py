"""``neurorvq-stream run``: the live pipeline on an LSL stream, with display or status line."""

from __future__ import annotations

import argparse
import os
from typing import TYPE_CHECKING

from ._console import fit, print_status_lines, summary
from ._options import (
    add_model_options,
    add_run_options,
    add_signal_options,
    add_stream_options,
    config_from,
)

if TYPE_CHECKING:
    from neurorvq_stream.streamer import Pipeline, RunConfig


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("run", help="run the live pipeline on an LSL EEG stream")
    add_stream_options(p)
    add_signal_options(p)
    add_model_options(p)
    add_run_options(p)
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from neurorvq_stream.streamer import find_streams
    from neurorvq_stream.streamer._lsl import format_stream_list

    config = config_from(args)
    s = config.stream
    if s.name is None and s.source_id is None and s.type is None:
        print(format_stream_list(find_streams(timeout=1.0)))
        print("No stream chosen: pick one with `neurorvq-stream run --stream NAME` "
              "(or --source-id ID, or stream.name in --config).")
        return 2
    return run_pipeline(config, args.headless, args.duration, verbose=args.verbose)


def first_screen(pipeline: Pipeline, verbose: bool) -> str:
    """The started pipeline in a few lines of at most ``_console.WIDTH`` characters: the mapping
    in counts, the engine in one line, the outlets; ``verbose`` gives the full texts."""
    lines = []
    if pipeline.mapping is not None:
        lines.append(pipeline.mapping.describe() if verbose else pipeline.mapping.summary())
    if pipeline.models is not None:
        models = pipeline.models
        lines.append(f"Engine: {models.describe() if verbose else models.headline()}")
    if pipeline.outlets is not None:
        prefix = f"{pipeline.outlets.identity.name}-"
        kinds = ", ".join(name.removeprefix(prefix) for name in pipeline.outlets.names)
        lines.append(f"Outlets: {prefix}{{{kinds}}}")
    if verbose:
        return "\n".join(lines)
    lines.append("(neurorvq-stream --verbose ... adds the channel table and the engine's choices)")
    return fit("\n".join(lines))


def has_screen() -> bool:
    """A real screen to open the display on (offscreen Qt is not one)."""
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def run_pipeline(config: RunConfig, headless: bool, duration: float | None,
                 screenshot: str | None = None, verbose: bool = False) -> int:
    """Start the pipeline, show it until ``duration`` or Ctrl-C, print the summary.

    Before the status line it prints a first screen that fits a terminal; ``verbose`` adds
    the channel mapping table and the engine's full description.
    Returns 1 when a pipeline thread died during the run (the summary names it), else 0.
    """
    from neurorvq_stream.streamer import Pipeline, ResultHub

    hub = ResultHub()
    pipeline = Pipeline(config, hub)
    print(fit(f"Starting on stream {config.stream.name or config.stream.source_id!r} ..."))
    pipeline.start()
    try:
        print(first_screen(pipeline, verbose))
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
