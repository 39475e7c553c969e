"""The processing thread: ring buffer -> preprocessing -> windows -> quality -> mailbox.

Reads what acquisition wrote since its last pass (samples, timestamps, gap segments and
stream flags, all from the ring), splits it at gaps (resetting the filters and the window
schedulers there, so no window mixes data across a gap), and for every window path
(``_paths``) preprocesses each gap-free piece and cuts its windows. Each window's quality
flags are completed, the markers that fall inside it attached, and it is posted to the
mailbox saying which models it feeds. The stage also keeps the pipeline status in step
with the inlet's counters.
"""

from __future__ import annotations

import dataclasses
import itertools
import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ._config import RunConfig
from ._inlet import EEGInlet, MarkerInlet
from ._mailbox import Mailbox, QueuedWindow
from ._paths import WindowPath
from ._preprocessing import Preprocessor
from ._quality import (
    ChannelFlag,
    UnitCheck,
    assess_window,
    count_by_kind,
    rate_warning,
    unit_warning,
)
from ._results import ResultHub
from ._ring_buffer import BufferOverrunError, RingBuffer
from ._windows import MarkerLockedWindows, SlidingWindows, Window

logger = logging.getLogger("neurorvq_stream")


@dataclass
class _Position:
    """Where the last pass stopped: ring count, segment of the last sample read."""

    count: int = 0
    segment: int = 0


@dataclass
class _Cut:
    """A window path at work: its preprocessor and scheduler carry their state."""

    path: WindowPath
    pre: Preprocessor
    scheduler: SlidingWindows | MarkerLockedWindows


class ProcessingStage:
    """Thread body of the processing stage; see the module docstring."""

    def __init__(
        self,
        config: RunConfig,
        inlet: EEGInlet,
        markers: MarkerInlet | None,
        ring: RingBuffer,
        paths: Sequence[WindowPath],
        source_index: np.ndarray,
        unit_scale: float,
        mailbox: Mailbox,
        hub: ResultHub,
    ) -> None:
        self.config = config
        self.inlet = inlet
        self.markers = markers
        self.ring = ring
        self.source_index = source_index
        self.unit_scale = unit_scale
        self.mailbox = mailbox
        self.hub = hub
        self.cuts = [self._new_cut(p) for p in paths]
        self._pending: list[WindowPath] | None = None
        self._lock = threading.Lock()
        self._recent_markers: list[tuple[float, str]] = []
        self._n_posted = 0
        self._unit = UnitCheck(inlet.sfreq)
        self.data_ready = threading.Event()

    def set_paths(self, paths: Sequence[WindowPath]) -> None:
        """Cut these paths from the next pass on (a classifier swap). A path that cuts the
        same windows as a current one keeps its filter and window state; a new one starts
        from the next samples (its first window after one window length)."""
        with self._lock:
            self._pending = list(paths)

    def run(self, stop: threading.Event) -> None:
        position = _Position()
        while not stop.is_set():
            self.data_ready.wait(0.05)
            self.data_ready.clear()
            self._apply_pending_paths()
            self._sync_status()
            self._take_markers()
            if self.ring.n_written > position.count:
                self._process(position)

    def _new_cut(self, path: WindowPath) -> _Cut:
        pre = path.preprocessor(self.inlet.sfreq, len(self.source_index), self.unit_scale)
        return _Cut(path, pre, path.scheduler(self.inlet.replay_speed))

    def _apply_pending_paths(self) -> None:
        with self._lock:
            pending, self._pending = self._pending, None
        if pending is None:
            return
        cuts = []
        for path in pending:
            same = next((c for c in self.cuts if c.path.same_windows(path)), None)
            cuts.append(_Cut(path, same.pre, same.scheduler) if same else self._new_cut(path))
        self.cuts = cuts

    # ------------------------------------------------------------------ per pass
    def _take_markers(self) -> None:
        if self.markers is None:
            return
        for t, label in self.markers.pull():
            self._recent_markers = [*self._recent_markers[-63:], (t, label)]
            for cut in self.cuts:
                if cut.path.locks_on(label):
                    assert isinstance(cut.scheduler, MarkerLockedWindows)
                    for window in cut.scheduler.add_marker(t, label):
                        self._post(cut.path, window, 0.0)

    def _process(self, position: _Position) -> None:
        stop = self.ring.n_written
        t0 = time.perf_counter()
        try:
            data, times, segments, stream_flags = self.ring.read(position.count, stop)
        except BufferOverrunError:
            # Processing fell a whole buffer behind: skip to the newest data, as after a gap.
            skipped = stop - self.ring.capacity // 2 - position.count
            self.hub.increment("samples_lost", skipped)
            logger.warning("Processing fell behind; skipped %d samples.", skipped)
            position.count += skipped
            position.segment = -1
            return
        data = data[:, self.source_index]
        self._unit.update(np.where(np.isfinite(data), data, np.nan) * self.unit_scale)
        unit_flag = int(ChannelFlag.UNIT) if self._unit.verdict else 0
        breaks = np.flatnonzero(np.diff(np.concatenate(([position.segment], segments))))
        windows: list[tuple[WindowPath, Window]] = []
        for a, b in itertools.pairwise([0, *breaks.tolist(), len(times)]):
            for cut in self.cuts:
                if a in breaks:
                    cut.pre.reset()
                    cut.scheduler.mark_gap()
                if b == a:
                    continue
                out = cut.pre.process(data[a:b], times[a:b])
                if len(out.times) == 0:
                    continue
                extra = int(np.bitwise_or.reduce(stream_flags[a:b])) | unit_flag
                cut_windows = cut.scheduler.feed(out.data, out.times,
                                                 out.flags | np.uint8(extra))
                windows += [(cut.path, w) for w in cut_windows]
        position.count, position.segment = stop, int(segments[-1])
        elapsed = time.perf_counter() - t0
        if elapsed * 1e3 > self.config.budgets.preprocess_ms:
            self.hub.increment("deadline_misses")
            logger.debug("Preprocessing took %.1f ms (budget %.1f ms).",
                         elapsed * 1e3, self.config.budgets.preprocess_ms)
        for path, window in windows:
            self._post(path, window, elapsed)

    def _post(self, path: WindowPath, window: Window, preprocess_s: float) -> None:
        """Complete the window's flags and markers, then hand it to inference."""
        assessment = assess_window(window.data, window.flags, self.config.quality,
                                   path.preprocessing.clip_uv)
        inside = tuple((t, m) for t, m in self._recent_markers
                       if window.t_first < t <= window.t_last)
        # One index sequence for the run (each path's scheduler counts its own windows).
        self._n_posted += 1
        window = dataclasses.replace(window, index=self._n_posted - 1, flags=assessment.flags,
                                     markers=inside,
                                     rejected=assessment.rejected, tokenize=path.tokenize,
                                     classifier=path.classifier, display=path.display)
        if self.mailbox.put(QueuedWindow(window, preprocess_s, time.perf_counter())):
            self.hub.increment("windows_dropped")
        self.hub.update_status(queue_depth=self.mailbox.depth,
                               flag_counts=tuple(count_by_kind(assessment.flags).items()))

    def _sync_status(self) -> None:
        c = self.inlet.counters
        warnings = []
        if c.rate_mismatch:
            warnings.append(rate_warning(c.measured_rate,
                                         self.inlet.sfreq * self.inlet.replay_speed))
        if self._unit.verdict:
            warnings.append(unit_warning(self._unit.verdict))
        skipped = sum(getattr(cut.scheduler, "n_skipped", 0) for cut in self.cuts)
        self.hub.update_status(
            stream_state=c.state, samples_received=c.samples_received,
            samples_lost=c.samples_lost, gaps=c.gaps, stalls=c.stalls,
            measured_rate=c.measured_rate, stream_warnings=tuple(warnings),
            markers_skipped=skipped,
        )
