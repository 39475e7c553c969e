"""What a run prints: a live status line, and a summary with latencies, counters and faults.

Everything a user must know to trust the output is on the line: the health (an "error"
when a pipeline thread died), windows rejected for bad channels, the flagged channels of
the newest window and stream-level doubts (rate, unit).
"""

from __future__ import annotations

import logging
import sys
import textwrap
import time
from collections.abc import Callable

import numpy as np

from neurorvq_stream.streamer import PipelineStatus, ResultHub

#: Columns of the first screen (what a run prints before its status line), so that it reads
#: in any terminal; longer lines end in "..." (``--verbose`` prints the full texts).
WIDTH = 120

#: Latency stages in the summary table, in data-flow order.
SUMMARY_STAGES = ("preprocess", "wait", "tokenize", "reconstruct", "classify", "inference",
                  "end_to_end")


def fit(text: str, width: int = WIDTH) -> str:
    """``text`` with every line cut to ``width`` characters, a cut one ending in '...'."""
    return "\n".join(line if len(line) <= width else line[:width - 3] + "..."
                     for line in text.splitlines())


class WrappingFormatter(logging.Formatter):
    """Log lines wrapped at :data:`WIDTH` columns, whole: a warning on the first screen is
    never cut (continuation lines are indented)."""

    def format(self, record: logging.LogRecord) -> str:
        return "\n".join(textwrap.fill(line, WIDTH, subsequent_indent="  ") or line
                         for line in super().format(record).splitlines())


def wait_while(alive: Callable[[], bool], duration: float | None,
               tick: Callable[[], None] | None = None) -> None:
    """Sleep in half seconds while ``alive()``, at most ``duration`` s; Ctrl-C ends it."""
    end = time.monotonic() + duration if duration is not None else float("inf")
    try:
        while alive() and time.monotonic() < end:
            time.sleep(0.5)
            if tick is not None:
                tick()
    except KeyboardInterrupt:
        pass


def status_line(hub: ResultHub) -> str:
    """One line: health, counters, newest prediction, flags and warnings."""
    s = hub.status()
    latest = hub.latest()
    e2e = latest.latency.get("end_to_end", float("nan")) if latest else float("nan")
    parts = [f"[{s.health}] windows {s.windows_done} dropped {s.windows_dropped} "
             f"rejected {s.windows_rejected} late {s.deadline_misses} "
             f"errors {s.inference_errors} lost {s.samples_lost} | e2e {e2e:.0f} ms"]
    decided = next((r for r in reversed(hub.since(-1)) if r.decision is not None), None)
    if decided is not None:  # marker-locked decisions are rarer than the sliding windows
        p = decided.probabilities
        confidence = f" {np.max(p):.2f}" if p is not None else ""
        label = f" at {decided.label}" if decided.label else ""
        parts.append(f"{decided.decision}{confidence}{label}")
    if not np.isnan(s.inference.estimated_accuracy):
        parts.append(f"estimated accuracy {s.inference.estimated_accuracy:.2f}")
    flagged = [f"{n} {name}" for name, n in s.flag_counts if n]
    if flagged:
        parts.append("flagged: " + ", ".join(flagged))
    parts += list(s.stream_warnings)
    parts += [f"FAILED {text}" for text in s.failed]
    return " | ".join(parts)


def print_status_lines(hub: ResultHub, alive: Callable[[], bool],
                       duration: float | None) -> None:
    """Rewrite the status line every half second until the run ends."""
    def tick() -> None:
        sys.stdout.write("\r" + status_line(hub) + "   ")
        sys.stdout.flush()

    wait_while(alive, duration, tick)
    print()


def summary(hub: ResultHub) -> str:
    """Counters, per-stage latency percentiles, flagged channels and failures of a run."""
    s: PipelineStatus = hub.status()
    lines = [f"Windows done {s.windows_done}, dropped {s.windows_dropped}, rejected "
             f"{s.windows_rejected}, deadline misses {s.deadline_misses}, inference errors "
             f"{s.inference_errors}, samples lost {s.samples_lost}, gaps {s.gaps}, stalls "
             f"{s.stalls}, markers skipped {s.markers_skipped}."]
    i = s.inference
    if i.windows_decided or i.windows_undecided:
        line = (f"Decisions: {i.windows_decided} of {i.windows_decided + i.windows_undecided} "
                f"classified windows decided (coverage {s.coverage:.2f})")
        if i.trials:
            line += (f"; {i.trials} trials, {i.trials_decided} decided, balanced accuracy "
                     f"{i.trial_accuracy:.3f}")
        if not np.isnan(i.estimated_accuracy):
            line += (f"; accuracy on this session as the decoder estimates it (committee, "
                     f"past trials' classes) {i.estimated_accuracy:.2f}")
        lines.append(line + ".")
    results = hub.since(-1)
    if results:
        lines.append(f"{'latency (ms)':<14}{'p50':>8}{'p95':>8}{'p99':>8}{'max':>8}")
        for stage in SUMMARY_STAGES:
            values = np.array([r.latency[stage] for r in results if stage in r.latency])
            if values.size:
                p50, p95, p99 = np.percentile(values, [50, 95, 99])
                lines.append(f"{stage:<14}{p50:8.1f}{p95:8.1f}{p99:8.1f}{values.max():8.1f}")
    else:
        lines.append("No window was processed.")
    if s.channel_flag_windows:
        worst = sorted(s.channel_flag_windows, key=lambda item: -item[1])
        lines.append("Flagged channels (windows): "
                     + ", ".join(f"{name} {n}" for name, n in worst[:12])
                     + (f" and {len(worst) - 12} more" if len(worst) > 12 else ""))
    lines += [f"Warning: {text}" for text in s.stream_warnings]
    lines += [f"FAILED: {text}" for text in s.failed]
    return "\n".join(lines)
