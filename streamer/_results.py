"""What the pipeline produces for each window, its status, and where readers pick them up.

The inference stage writes results; each stage reports its own part of the status; the
LSL outlets, the Qt display and the console read. Readers never block the writers: the hub
keeps the newest results in a bounded history and hands out references only (results and
status parts are immutable once published).
"""

from __future__ import annotations

import dataclasses
import threading
from collections import deque
from dataclasses import dataclass, field

import numpy as np

from ._inlet import InletCounters
from ._quality import flag_names, rate_warning, unit_warning


@dataclass(frozen=True)
class WindowResult:
    """Everything computed for one window of the live stream.

    ``t_last`` is the source LSL time (clock-corrected) of the window's last sample; every
    outlet sample for this window carries it as its timestamp. ``latency`` maps a stage
    name to milliseconds, like the metrics outlet. ``flags`` (C,) uint8 holds each
    channel's quality flags (``ChannelFlag`` bits); a ``rejected`` window had too many
    flagged channels to be classified, so it has no probabilities. ``display`` is False for
    a window cut only for a classifier calibrated on other windows (its own preprocessing
    and timing): the display does not show it as the signal. ``label``/``marker_time`` are
    the marker that locked the window (the trial it answers), ``truth`` the classifier's
    class that marker belongs to; ``decision`` is what the run decided for a classified or
    rejected window (a class, "undecided", "rejected").
    """

    index: int
    t_last: float
    channels: tuple[str, ...]
    source_channels: tuple[str, ...]
    signal: np.ndarray
    n_patches: int
    tokens: np.ndarray | None = None
    reconstruction: np.ndarray | None = None
    probabilities: np.ndarray | None = None
    class_names: tuple[str, ...] = ()
    latency: dict[str, float] = field(default_factory=dict)
    flags: np.ndarray | None = None
    rejected: bool = False
    markers: tuple[tuple[float, str], ...] = ()
    label: str | None = None
    marker_time: float | None = None
    truth: str | None = None
    decision: str | None = None
    gap: bool = False
    display: bool = True

    def flagged_channels(self) -> dict[str, tuple[str, ...]]:
        """Channel name -> names of its flags, for the channels that have any."""
        if self.flags is None:
            return {}
        return {name: flag_names(int(bits))
                for name, bits in zip(self.channels, self.flags, strict=True) if bits}


@dataclass(frozen=True)
class RunInfo:
    """What the run is: written by the pipeline when it starts and when it swaps a classifier.

    ``expected_rate`` is the rate samples should arrive at (the nominal rate times a
    replay's declared speed); ``classifier_error`` the newest failed classifier reload.
    """

    stream_name: str = ""
    source_rate: float = 0.0
    expected_rate: float = 0.0
    n_source_channels: int = 0
    mapping: tuple[tuple[str, str], ...] = ()
    engine: str = ""
    token_layout: tuple[int, int] = (0, 0)
    classifier_error: str = ""


@dataclass(frozen=True)
class ProcessingCounts:
    """What the processing stage counts: written by it alone.

    ``windows_replaced``: sliding windows replaced in the mailbox before inference took
    them; ``samples_skipped``: samples processing never read because it fell a whole
    buffer behind (an overrun: lost to the run although the inlet received them);
    ``late``: passes over the preprocessing budget; ``unit_doubt``: why the amplitudes
    cannot be the declared unit ("" when they can).
    """

    windows_replaced: int = 0
    samples_skipped: int = 0
    markers_skipped: int = 0
    late: int = 0
    unit_doubt: str = ""


@dataclass(frozen=True)
class InferenceCounts:
    """What the inference stage counts: written by it alone.

    ``windows_expired``: windows dropped unrun because they waited too long for the
    budget; ``windows_decided``/``windows_undecided``: classified windows whose confidence
    did / did not reach the decision threshold; ``trials``, ``trials_decided`` and
    ``trial_accuracy``: windows that answer a trial of the classifier's classes, and the
    balanced accuracy of the decided ones (``decoders.TrialScorer``; since the classifier
    last changed classes); ``estimated_accuracy``: the current classifier's accuracy on
    this session as its committee and the cued trials' classes estimate it (nan before
    the warm-up, or with neither; ``decoders._session_confidence``); ``late``: windows
    over a budget (expired ones included);
    ``queue_depth``: the windows waiting when the newest was taken; ``flag_counts``:
    channels per flag kind in the newest window; ``channel_flag_windows``: per channel,
    windows it was flagged in.
    """

    windows_done: int = 0
    windows_rejected: int = 0
    windows_decided: int = 0
    windows_undecided: int = 0
    trials: int = 0
    trials_decided: int = 0
    trial_accuracy: float = float("nan")
    estimated_accuracy: float = float("nan")
    windows_expired: int = 0
    late: int = 0
    inference_errors: int = 0
    error: str = ""
    queue_depth: int = 0
    flag_counts: tuple[tuple[str, int], ...] = ()
    channel_flag_windows: tuple[tuple[str, int], ...] = ()


@dataclass(frozen=True)
class PipelineStatus:
    """A running pipeline's state, assembled from the parts each owner reports.

    One writer per fact: the pipeline (``run``, ``failed``: every pipeline thread that
    died, with its error), the acquisition thread (``stream``: the inlet's counters), the
    processing and inference stages (their counts). Everything else is derived here and
    read by the status line, the display, the metrics outlet and the summary. A run with a
    failed thread is in the "error" :attr:`health` whatever the stream does.
    """

    run: RunInfo = field(default_factory=RunInfo)
    stream: InletCounters = field(default_factory=InletCounters)
    processing: ProcessingCounts = field(default_factory=ProcessingCounts)
    inference: InferenceCounts = field(default_factory=InferenceCounts)
    failed: tuple[str, ...] = ()

    @property
    def health(self) -> str:
        """"error" when a pipeline thread died, else the stream's state."""
        return "error" if self.failed else self.stream.state

    # The run
    @property
    def stream_name(self) -> str:
        return self.run.stream_name

    @property
    def source_rate(self) -> float:
        return self.run.source_rate

    @property
    def n_source_channels(self) -> int:
        return self.run.n_source_channels

    @property
    def mapping(self) -> tuple[tuple[str, str], ...]:
        return self.run.mapping

    @property
    def engine(self) -> str:
        return self.run.engine

    @property
    def token_layout(self) -> tuple[int, int]:
        return self.run.token_layout

    # The stream
    @property
    def stream_state(self) -> str:
        return self.stream.state

    @property
    def samples_received(self) -> int:
        return self.stream.samples_received

    @property
    def samples_lost(self) -> int:
        """Samples the run never processed: lost in gaps, or skipped after an overrun."""
        return self.stream.samples_lost + self.processing.samples_skipped

    @property
    def gaps(self) -> int:
        return self.stream.gaps

    @property
    def stalls(self) -> int:
        return self.stream.stalls

    @property
    def measured_rate(self) -> float:
        return self.stream.measured_rate

    # Windows
    @property
    def windows_done(self) -> int:
        return self.inference.windows_done

    @property
    def windows_dropped(self) -> int:
        """Windows cut but never run: replaced by a newer one, or expired."""
        return self.processing.windows_replaced + self.inference.windows_expired

    @property
    def windows_rejected(self) -> int:
        return self.inference.windows_rejected

    @property
    def deadline_misses(self) -> int:
        return self.processing.late + self.inference.late

    @property
    def inference_errors(self) -> int:
        return self.inference.inference_errors

    @property
    def coverage(self) -> float:
        """The share of classified windows that became a decision (nan before any)."""
        n = self.inference.windows_decided + self.inference.windows_undecided
        return self.inference.windows_decided / n if n else float("nan")

    @property
    def markers_skipped(self) -> int:
        return self.processing.markers_skipped

    @property
    def queue_depth(self) -> int:
        return self.inference.queue_depth

    @property
    def flag_counts(self) -> tuple[tuple[str, int], ...]:
        return self.inference.flag_counts

    @property
    def channel_flag_windows(self) -> tuple[tuple[str, int], ...]:
        return self.inference.channel_flag_windows

    @property
    def stream_warnings(self) -> tuple[str, ...]:
        """Stream-level doubts in words: the arrival rate, the amplitude unit."""
        warnings = []
        if self.stream.rate_mismatch:
            warnings.append(rate_warning(self.stream.measured_rate, self.run.expected_rate))
        if self.processing.unit_doubt:
            warnings.append(unit_warning(self.processing.unit_doubt))
        return tuple(warnings)

    @property
    def last_error(self) -> str:
        """The newest failure: a dead thread, else an inference or classifier-reload error."""
        if self.failed:
            return self.failed[-1]
        return "; ".join(e for e in (self.inference.error, self.run.classifier_error) if e)


class ResultHub:
    """Thread-safe mailbox between the pipeline and its readers (outlets, display, tests).

    Results are published by the inference stage; each part of the status is reported by
    its one owner (``report``) and replaced whole, so a reader never sees half an update.
    """

    def __init__(self, history: int = 600) -> None:
        self._lock = threading.Lock()
        self._results: deque[WindowResult] = deque(maxlen=history)
        self._status = PipelineStatus()
        self._new = threading.Condition(self._lock)

    def publish(self, result: WindowResult) -> None:
        with self._new:
            self._results.append(result)
            self._new.notify_all()

    def report(self, part: RunInfo | InletCounters | ProcessingCounts | InferenceCounts
               ) -> None:
        """Replace the status part of ``part``'s type (called by that part's owner only)."""
        key = _PARTS[type(part)]
        with self._lock:
            self._status = dataclasses.replace(self._status, **{key: part})

    def report_failure(self, text: str) -> None:
        """Add a dead thread to ``failed`` (the pipeline's thread guard calls this)."""
        with self._lock:
            self._status = dataclasses.replace(self._status,
                                               failed=(*self._status.failed, text))

    def status(self) -> PipelineStatus:
        with self._lock:
            return self._status

    def latest(self) -> WindowResult | None:
        with self._lock:
            return self._results[-1] if self._results else None

    def since(self, index: int) -> list[WindowResult]:
        """Results with ``result.index > index``, oldest first (within the kept history)."""
        with self._lock:
            return [r for r in self._results if r.index > index]

    def wait_for(self, index: int, timeout: float) -> list[WindowResult]:
        """Block up to ``timeout`` seconds until a result newer than ``index`` arrives."""
        with self._new:
            self._new.wait_for(
                lambda: bool(self._results) and self._results[-1].index > index, timeout
            )
            return [r for r in self._results if r.index > index]


_PARTS = {RunInfo: "run", InletCounters: "stream", ProcessingCounts: "processing",
          InferenceCounts: "inference"}
