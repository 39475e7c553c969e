"""The live pipeline: acquisition, processing and inference threads around one ``RunConfig``.

Threads and what may block whom:

- acquisition (``_inlet.Acquisition``): inlet -> ring buffer. Never waits on anything else.
- processing: ring buffer -> ``Preprocessor`` -> window scheduler -> channel mapping ->
  single-slot mailbox. A newer window replaces a pending one (counted as dropped), so
  nothing queues up behind a slow model.
- inference: takes the newest window, drops it when it waited too long to meet the
  end-to-end budget (counted as dropped and as a deadline miss), runs the engines,
  publishes to the ``ResultHub`` and the LSL outlets. A window that still ends up late
  (inference or end-to-end over budget) is published, stamped, and counted as a miss;
  so is a processing pass over ``budgets.preprocess_ms``. An exception in inference is
  logged and counted; the other threads go on.
- watcher (optional): reloads the classifier when its file changes (``calibrate``).

Latency of a window = ``local_clock()`` at outlet push minus the source time of its last
200 Hz sample. That sample sits ``Preprocessor.resampler_latency_s`` behind the newest
source sample (the resampler's look-ahead), so this latency includes that constant.
"""

from __future__ import annotations

import dataclasses
import itertools
import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ._channel_mapping import ChannelMapping, map_channels
from ._config import RunConfig
from ._inlet import Acquisition, EEGInlet, MarkerInlet
from ._outlets import OUTLET_NAMES, ResultOutlets
from ._preprocessing import Preprocessor, unit_scale_from_lsl
from ._results import ResultHub, WindowResult
from ._ring_buffer import BufferOverrunError, RingBuffer
from ._windows import MarkerLockedWindows, SlidingWindows, Window

logger = logging.getLogger("neurorvq_stream")


@dataclass(frozen=True)
class _EngineResult:
    tokens: np.ndarray | None
    reconstruction: np.ndarray | None
    probabilities: np.ndarray | None
    class_names: tuple[str, ...]
    timings: dict[str, float]


class _Engines:
    """Tokenizer and classifier behind one call; the classifier half can be swapped live.

    Uses ``engines.backends.create_engine`` (one engine per model so swapping the head
    never reloads the tokenizer).
    """

    def __init__(self, tokenizer: Path | None, classifier: Path | None, backend: str) -> None:
        from engines.backends import create_engine

        self._create = create_engine
        self.backend = backend
        self.tokenizer = create_engine(tokenizer=tokenizer, classifier=None, backend=backend) \
            if tokenizer is not None else None
        self.classifier = self._load_classifier(classifier) if classifier is not None else None

    def _load_classifier(self, path: Path) -> object:
        return self._create(tokenizer=None, classifier=path, backend=self.backend)

    def describe(self) -> str:
        parts = [e.describe() for e in (self.tokenizer, self.classifier) if e is not None]
        return " | ".join(parts) or "no model"

    @property
    def class_names(self) -> tuple[str, ...]:
        return tuple(self.classifier.class_names) if self.classifier is not None else ()

    def warmup(self, channels: Sequence[str], n_patches: int) -> None:
        for engine in (self.tokenizer, self.classifier):
            if engine is not None:
                engine.warmup(channels, n_patches)

    def swap_classifier(self, path: Path, channels: Sequence[str], n_patches: int) -> None:
        """Load and warm the new head first, then switch with one reference assignment."""
        fresh = self._load_classifier(path)
        fresh.warmup(channels, n_patches)
        self.classifier = fresh

    def run(self, x: np.ndarray, channels: Sequence[str], reconstruct: bool) -> _EngineResult:
        timings: dict[str, float] = {}
        tokens = recon = probs = None
        tokenizer, classifier = self.tokenizer, self.classifier
        if tokenizer is not None:
            out = tokenizer.run(x, channels, reconstruct=reconstruct)
            tokens, recon = out.tokens, out.reconstruction
            timings.update(out.timings)
        if classifier is not None:
            out = classifier.run(x, channels, reconstruct=False)
            probs = out.probabilities
            timings.update(out.timings)
        names = tuple(classifier.class_names) if classifier is not None else ()
        return _EngineResult(tokens, recon, probs, names, timings)


@dataclass(frozen=True)
class _Pending:
    """A window waiting for inference, with what was known when it was cut."""

    window: Window
    preprocess_s: float
    markers: tuple[tuple[float, str], ...]
    posted: float


class _Mailbox:
    """Single slot holding the newest window; putting over a full slot drops the old one."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._item: _Pending | None = None

    def put(self, item: _Pending) -> bool:
        """Store ``item``; True when an unread older window was replaced (dropped)."""
        with self._cond:
            dropped = self._item is not None
            if dropped and self._item.window.gap and not item.window.gap:
                # The gap flag must reach a reader even when its window is dropped.
                item = dataclasses.replace(item, window=dataclasses.replace(item.window, gap=True))
            self._item = item
            self._cond.notify()
            return dropped

    def take(self, timeout: float) -> _Pending | None:
        with self._cond:
            if self._item is None:
                self._cond.wait(timeout)
            item, self._item = self._item, None
            return item

    @property
    def depth(self) -> int:
        return int(self._item is not None)


class Pipeline:
    """A live NeuroRVQ pipeline for one EEG stream, described by a :class:`RunConfig`.

    ``start()`` resolves the stream, maps channels, loads and warms the engines and starts
    the threads; ``stop()`` ends them. Results go to ``hub`` (created when not given) and
    to the LSL outlets enabled in the config.
    """

    def __init__(self, config: RunConfig, hub: ResultHub | None = None) -> None:
        self.config = config
        self.hub = hub if hub is not None else ResultHub()
        self._stop_event = threading.Event()
        self._data_ready = threading.Event()
        self._mailbox = _Mailbox()
        self._threads: list[threading.Thread] = []
        self._infer_ema: float | None = None
        self._warned_budget = False
        self.inlet: EEGInlet | None = None
        self.markers: MarkerInlet | None = None
        self.acquisition: Acquisition | None = None
        self.outlets: ResultOutlets | None = None
        self.engines: _Engines | None = None
        self.mapping: ChannelMapping | None = None
        self.channels: tuple[str, ...] = ()
        self.source_channels: tuple[str, ...] = ()
        self._source_index: np.ndarray = np.empty(0, int)
        self._classifier_path: Path | None = None
        self._classifier_mtime = 0.0

    # ---------------------------------------------------------------- life cycle
    def start(self) -> Pipeline:
        """Open the stream and models, then start streaming (returns self for chaining)."""
        cfg = self.config
        s = cfg.stream
        self.inlet = EEGInlet(
            s.name, s.type, s.source_id, s.host,
            resolve_timeout=s.resolve_timeout, stall_timeout=s.stall_timeout,
            gap_tolerance=s.gap_tolerance, dejitter=s.dejitter,
            max_buflen=max(1, int(np.ceil(s.buffer_seconds))),
        )
        self._map_channels()
        self._classifier_path = cfg.classifier_path()
        tokenizer = cfg.tokenizer_path() if cfg.models.tokenizer != "none" else None
        self.engines = _Engines(tokenizer, self._classifier_path, cfg.engine)
        self.engines.warmup(self.channels, self._n_patches)
        if self._classifier_path is not None:
            self._classifier_mtime = self._classifier_path.stat().st_mtime
        self._open_outlets()
        if cfg.markers.enabled:
            m = cfg.markers
            self.markers = MarkerInlet(m.name, m.type, m.source_id,
                                       resolve_timeout=s.resolve_timeout)
            self.markers.open()
        desc = self.inlet.description
        self.hub.update_status(
            stream_name=desc.name, source_rate=desc.sfreq, n_source_channels=desc.n_channels,
            mapping=tuple(zip(self.source_channels, self.channels, strict=True)),
            engine=self.engines.describe(), stream_state="starting",
        )
        self._ring = RingBuffer(desc.n_channels, int(np.ceil(s.buffer_seconds * desc.sfreq)))
        self.inlet.open()
        self.acquisition = Acquisition(self.inlet, self._write)
        self._threads = [
            self.acquisition,
            threading.Thread(target=self._guarded, args=(self._process_loop,),
                             name="neurorvq-processing", daemon=True),
            threading.Thread(target=self._guarded, args=(self._infer_loop,),
                             name="neurorvq-inference", daemon=True),
        ]
        if cfg.models.watch_classifier and self._classifier_path is not None:
            self._threads.append(threading.Thread(
                target=self._watch_loop, name="neurorvq-watcher", daemon=True))
        for thread in self._threads:
            thread.start()
        logger.info("Pipeline started on %s with %s.", desc, self.engines.describe())
        return self

    def stop(self) -> None:
        """Stop all threads and close the streams (idempotent)."""
        self._stop_event.set()
        self._data_ready.set()
        if self.acquisition is not None:
            self.acquisition.stop()
        for thread in self._threads:
            thread.join(timeout=5.0)
        self._threads = []
        if self.inlet is not None:
            self.inlet.close()
        if self.markers is not None:
            self.markers.close()
        if self.outlets is not None:
            self.outlets.close()
        self.hub.update_status(stream_state="stopped")

    def __enter__(self) -> Pipeline:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        return any(t.is_alive() for t in self._threads)

    # ---------------------------------------------------------------- set-up helpers
    @property
    def _n_patches(self) -> int:
        w = self.config.windows
        if w.mode == "markers" and w.marker_length is not None:
            return max(1, round(w.marker_length))
        return w.n_patches

    def _map_channels(self) -> None:
        assert self.inlet is not None
        chans = self.inlet.channels
        # LSL/XDF metadata gives locations in millimetres; the mapping takes metres.
        mapping = map_channels(
            [c.label for c in chans],
            types=[c.type for c in chans],
            positions={c.label: np.asarray(c.location) / 1e3 for c in chans if c.location},
            montage=self.config.mapping.montage,
        )
        self.mapping = mapping
        self._source_index = np.asarray(mapping.source_indices, dtype=int)
        self.source_channels = mapping.source_labels
        self.channels = tuple(mapping.names)
        units = {chans[i].unit for i in self._source_index}
        if len(units) > 1:
            raise ValueError(
                f"The mapped channels of {self.inlet.description.name!r} mix units {units}; "
                "the pipeline needs one unit (V, mV or uV) for all EEG channels."
            )
        scale = unit_scale_from_lsl(units.pop() if units else "")
        p = self.config.preprocessing
        self._pre = Preprocessor(
            self.inlet.sfreq, len(self._source_index), line_freq=p.line_freq,
            band=(p.l_freq, p.h_freq), clip_uv=p.clip_uv, unit_scale=scale,
        )
        logger.info("%s", mapping.describe())

    def _open_outlets(self) -> None:
        assert self.engines is not None and self.inlet is not None
        o = self.config.outlets
        enabled = tuple(name for name, on in zip(
            OUTLET_NAMES, (o.predictions, o.tokens, o.reconstruction, o.metrics), strict=True
        ) if on)
        if not enabled:
            return
        self.outlets = ResultOutlets(
            self.channels, self._n_patches,
            hop_samples=min(self._n_patches * 200, max(1, round(self.config.windows.hop * 200))),
            class_names=self.engines.class_names, meta=self._meta(), enabled=enabled,
            source_id=o.source_id,
        )

    def _meta(self) -> dict[str, str]:
        assert self.engines is not None and self.inlet is not None
        return {
            "source_stream": self.inlet.description.name,
            "source_id": self.inlet.description.source_id,
            "tokenizer": str(self.config.models.tokenizer or self.config.tokenizer_path()),
            "classifier": str(self._classifier_path),
            "engine": self.engines.describe(),
            "mapping": ",".join(f"{a}:{b}" for a, b in zip(
                self.source_channels, self.channels, strict=True)),
        }

    def _guarded(self, loop: Callable[[], None]) -> None:
        """Run a thread's loop; an unexpected error is logged and shown, never silent."""
        try:
            loop()
        except Exception as err:
            logger.exception("Pipeline thread %s stopped.", threading.current_thread().name)
            self.hub.update_status(stream_state="error",
                                   last_error=f"{threading.current_thread().name}: {err}")

    # ---------------------------------------------------------------- acquisition side
    def _write(self, data: np.ndarray, ts: np.ndarray) -> None:
        self._ring.write(data, ts)
        self._data_ready.set()

    # ---------------------------------------------------------------- processing thread
    def _process_loop(self) -> None:
        assert self.inlet is not None
        cfg = self.config
        if cfg.windows.mode == "markers":
            scheduler: SlidingWindows | MarkerLockedWindows = MarkerLockedWindows(
                offset_s=cfg.windows.marker_offset, length_patches=self._n_patches)
        else:
            scheduler = SlidingWindows(cfg.windows.n_patches, cfg.windows.hop)
        gap_s = cfg.stream.gap_tolerance / self.inlet.sfreq
        read_from = 0
        seg_start = 0  # ring count of the first input since the last preprocessor reset
        last_t = np.nan
        recent_markers: list[tuple[float, str]] = []
        lock_on = None if cfg.markers.labels is None else set(cfg.markers.labels)
        while not self._stop_event.is_set():
            self._data_ready.wait(0.05)
            self._data_ready.clear()
            self._sync_status()
            for t, label in self.markers.pull() if self.markers is not None else []:
                recent_markers = [*recent_markers[-63:], (t, label)]
                if isinstance(scheduler, MarkerLockedWindows) and (
                        lock_on is None or label in lock_on):
                    for window in scheduler.add_marker(t, label):
                        self._post(window, 0.0, recent_markers)
            stop = self._ring.n_written
            if stop == read_from:
                continue
            t0 = time.perf_counter()
            # Keep the inputs the resampler may still interpolate times from.
            keep = int(np.ceil(self._pre.resampler_latency_s * self.inlet.sfreq)) + 2
            try:
                data, times = self._ring.read(read_from, stop)
            except BufferOverrunError:
                # Processing fell a whole buffer behind: skip to the newest data, as a gap.
                skipped = stop - self._ring.capacity // 2 - read_from
                self.hub.increment("samples_lost", skipped)
                logger.warning("Processing fell behind; skipped %d samples.", skipped)
                read_from, last_t = read_from + skipped, -np.inf
                continue
            breaks = np.flatnonzero(np.diff(np.concatenate(([last_t], times))) > gap_s)
            windows: list[Window] = []
            bounds = [0, *breaks.tolist(), len(times)]
            for a, b in itertools.pairwise(bounds):
                if a in breaks:
                    self._pre.reset()
                    scheduler.mark_gap()
                    seg_start = read_from + a
                if b == a:
                    continue
                n_out0 = self._pre.n_out
                out = self._pre.process(data[a:b, self._source_index])
                if len(out) == 0:
                    continue
                positions = self._pre.source_positions(n_out0, self._pre.n_out) + seg_start
                lo = max(seg_start, int(positions[0]) - keep)
                hi = read_from + b
                _, hist_t = self._ring.read(lo, hi)
                out_t = np.interp(positions, np.arange(lo, hi), hist_t)
                windows += scheduler.feed(out, out_t)
            read_from, last_t = stop, times[-1]
            elapsed = time.perf_counter() - t0
            if elapsed * 1e3 > cfg.budgets.preprocess_ms:
                self.hub.increment("deadline_misses")
                logger.debug("Preprocessing took %.1f ms (budget %.1f ms).",
                             elapsed * 1e3, cfg.budgets.preprocess_ms)
            for window in windows:
                self._post(window, elapsed, recent_markers)

    def _post(self, window: Window, preprocess_s: float,
              markers: list[tuple[float, str]]) -> None:
        first = window.t_last - window.data.shape[1] / 200.0
        inside = tuple((t, m) for t, m in markers if first < t <= window.t_last)
        if self._mailbox.put(_Pending(window, preprocess_s, inside, time.perf_counter())):
            self.hub.increment("windows_dropped")
        self.hub.update_status(queue_depth=self._mailbox.depth)

    def _sync_status(self) -> None:
        assert self.inlet is not None
        c = self.inlet.counters
        self.hub.update_status(
            stream_state=c.state, samples_received=c.samples_received,
            samples_lost=c.samples_lost, gaps=c.gaps, stalls=c.stalls,
        )
        if self.acquisition is not None and self.acquisition.error is not None:
            self.hub.update_status(last_error=f"acquisition: {self.acquisition.error!r}")

    # ---------------------------------------------------------------- inference thread
    def _infer_loop(self) -> None:
        import pylsl

        assert self.engines is not None
        budgets = self.config.budgets
        while not self._stop_event.is_set():
            item = self._mailbox.take(0.1)
            if item is None:
                continue
            window = item.window
            self.hub.update_status(queue_depth=self._mailbox.depth)
            age = pylsl.local_clock() - window.t_last
            if self._would_miss(age):
                self.hub.increment("deadline_misses")
                self.hub.increment("windows_dropped")
                continue
            x = window.data
            flags = self._channel_flags(x)
            try:
                t0 = time.perf_counter()
                result = self.engines.run(x, self.channels,
                                          reconstruct=self.config.outlets.reconstruction)
                infer_s = time.perf_counter() - t0
            except Exception as err:
                self.hub.increment("inference_errors")
                self.hub.update_status(last_error=f"inference: {err}")
                logger.exception("Inference failed on window %d; acquisition goes on.",
                                 window.index)
                continue
            self._infer_ema = infer_s if self._infer_ema is None \
                else 0.8 * self._infer_ema + 0.2 * infer_s
            late = infer_s * 1e3 > budgets.inference_ms
            latency = {f"{k}": v * 1e3 for k, v in result.timings.items()}
            latency.update(preprocess=item.preprocess_s * 1e3, inference=infer_s * 1e3,
                           wait=(t0 - item.posted) * 1e3)
            self._publish(window, result, latency, flags, item.markers, late)

    def _would_miss(self, age_s: float) -> bool:
        """Drop a window that a fresh one could beat: it waited too long to meet the budget.

        Even a fresh window is ``resampler_latency_s`` old. When that plus the inference
        time already exceeds the budget, no window can meet it; dropping them all would
        show nothing, so they run (each counted as a miss) and a warning says why.
        """
        budget_s = self.config.budgets.end_to_end_ms / 1e3
        if self._infer_ema is None:
            return False
        fresh_s = self._pre.resampler_latency_s + self._infer_ema
        if fresh_s >= budget_s:
            if not self._warned_budget:
                self._warned_budget = True
                logger.warning(
                    "A window needs ~%.0f ms (inference + resampler delay), more than the "
                    "end-to-end budget of %.0f ms: every window will be late. Raise "
                    "budgets.end_to_end_ms, map fewer channels or use a faster engine.",
                    fresh_s * 1e3, budget_s * 1e3)
            return False
        return age_s + self._infer_ema > budget_s

    def _publish(self, window: Window, result: _EngineResult, latency: dict[str, float],
                 flags: dict[str, str], markers: tuple, late: bool) -> None:
        import pylsl

        t_pub = time.perf_counter()
        age_ms = (pylsl.local_clock() - window.t_last) * 1e3
        if late or age_ms > self.config.budgets.end_to_end_ms:
            # Already computed: publish it (stamped, so consumers can judge), count it late.
            self.hub.increment("deadline_misses")
        res = WindowResult(
            index=window.index, t_last=window.t_last, channels=self.channels,
            source_channels=self.source_channels, signal=window.data,
            n_patches=window.data.shape[1] // 200, tokens=result.tokens,
            reconstruction=result.reconstruction, probabilities=result.probabilities,
            class_names=result.class_names, latency=latency, channel_flags=flags,
            markers=markers, label=window.label, gap=window.gap,
        )
        if self.outlets is not None:
            if result.class_names and result.class_names != self.outlets.class_names:
                self.outlets.set_classes(result.class_names, self._meta())
            self.outlets.push(res)
        latency["end_to_end"] = (pylsl.local_clock() - window.t_last) * 1e3
        latency["publish"] = (time.perf_counter() - t_pub) * 1e3
        self.hub.publish(res)
        self.hub.increment("windows_done")
        if self.outlets is not None:
            self.outlets.push_metrics(res, self.hub.status())

    def _channel_flags(self, x: np.ndarray) -> dict[str, str]:
        flags = {}
        held = self._pre.nonfinite_last
        for k, name in enumerate(self.channels):
            if held[k]:
                flags[name] = "nonfinite"
            elif np.ptp(x[k]) < 1e-6:
                flags[name] = "flat"
        return flags

    # ---------------------------------------------------------------- hot swap
    def swap_classifier(self, path: str | Path) -> None:
        """Load a new classifier head and switch to it between two windows."""
        assert self.engines is not None
        path = Path(path)
        self.engines.swap_classifier(path, self.channels, self._n_patches)
        self._classifier_path = path
        self._classifier_mtime = path.stat().st_mtime
        self.hub.update_status(engine=self.engines.describe())
        logger.info("Classifier swapped to %s (%s).", path, ", ".join(self.engines.class_names))

    def _watch_loop(self, every: float = 1.0) -> None:
        while not self._stop_event.wait(every):
            path = self._classifier_path
            if path is None or not path.is_file():
                continue
            mtime = path.stat().st_mtime
            if mtime == self._classifier_mtime:
                continue
            try:
                self.swap_classifier(path)
            except Exception as err:  # a half-written file: retry on the next change
                self._classifier_mtime = mtime
                self.hub.update_status(last_error=f"classifier reload: {err}")
                logger.warning("Could not reload classifier %s: %s", path, err)
