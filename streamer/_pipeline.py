"""The live pipeline: opens the stream and the models, then wires and runs the stage threads.

Threads and what may block whom:

- acquisition (``_inlet.Acquisition``): inlet -> ring buffer (samples, timestamps, gap
  segments, stream flags). Never waits on anything else.
- processing (``_processing.ProcessingStage``): ring -> preprocessing -> windows ->
  quality flags -> single-slot mailbox (a newer window replaces a pending one).
- inference (``_inference.InferenceStage``): mailbox -> models -> result -> hub + outlets.
- watcher (optional, ``_models.ClassifierWatcher``): swaps the classifier when its file
  changes (``calibrate`` writes it).

With ``record.path`` set, LabRecorder (``_recorder.Recorder``, its own process) records the
EEG, the markers and every outlet to one XDF file from before the first sample is pulled
until ``stop()``.

A thread that dies is reported, never silent: it is named in ``PipelineStatus.failed``
(health "error"), which the status line, the metrics outlet and the exit code show; the
other threads go on, so acquisition outlives a crash in inference.

Status: each fact has one writer. The pipeline reports what the run is (``RunInfo``, at
start and on a classifier swap) and which threads failed; acquisition, processing and
inference report their own counts (``_results``).
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np

from neurorvq_stream.engines import MODEL_RATE

from ._channel_mapping import ChannelMapping, map_channels
from ._config import RunConfig
from ._inference import InferenceStage
from ._inlet import Acquisition, EEGInlet, MarkerInlet
from ._mailbox import Mailbox
from ._models import BoundDecoder, ClassifierWatcher, Models
from ._outlets import KINDS, OutletIdentity, ResultOutlets, claim_identity
from ._paths import WindowPath
from ._preprocessing import unit_scale_from_lsl
from ._processing import ProcessingStage
from ._quality import ChannelFlag
from ._recorder import Recorder, StreamQuery
from ._results import ResultHub, RunInfo
from ._ring_buffer import RingBuffer

logger = logging.getLogger("neurorvq_stream")


class Pipeline:
    """A live NeuroRVQ pipeline for one EEG stream, described by a :class:`RunConfig`.

    ``start()`` resolves the stream, maps channels, loads and warms the models, opens the
    outlets and starts the threads; ``stop()`` ends them. Results go to ``hub`` (created
    when not given) and to the LSL outlets enabled in the config.
    """

    def __init__(self, config: RunConfig, hub: ResultHub | None = None) -> None:
        self.config = config
        self.hub = hub if hub is not None else ResultHub()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self.inlet: EEGInlet | None = None
        self.markers: MarkerInlet | None = None
        self.acquisition: Acquisition | None = None
        self.outlets: ResultOutlets | None = None
        self.recorder: Recorder | None = None
        self.processing: ProcessingStage | None = None
        self.models: Models | None = None
        self.mapping: ChannelMapping | None = None
        self.channels: tuple[str, ...] = ()
        self.source_channels: tuple[str, ...] = ()
        self._run_lock = threading.Lock()
        self._run_info = RunInfo()

    # ---------------------------------------------------------------- life cycle
    def start(self) -> Pipeline:
        """Open the stream and models, then start streaming (returns self for chaining).

        A failure on the way (no such stream, a bad checkpoint, an existing recording)
        closes what was opened already and re-raises.
        """
        record = self.config.record
        if record.path is not None and Path(record.path).exists() and not record.overwrite:
            raise FileExistsError(
                f"Recording file {record.path!r} already exists; choose another name or set "
                "record.overwrite: true.")
        try:
            return self._start()
        except BaseException:
            self.stop()
            raise

    def _start(self) -> Pipeline:
        cfg = self.config
        s = cfg.stream
        inlet = self.inlet = EEGInlet(
            s.name, s.type, s.source_id, s.host,
            resolve_timeout=s.resolve_timeout, stall_timeout=s.stall_timeout,
            gap_tolerance=s.gap_tolerance, max_jitter=s.max_jitter, dejitter=s.dejitter,
            max_buflen=max(1, int(np.ceil(s.buffer_seconds))), rate_tolerance=s.rate_tolerance,
        )
        unit_scale = self._map_channels(inlet)
        models = self.models = Models(
            cfg.tokenizer_path() if cfg.models.tokenizer != "none" else None, cfg.engine)
        if models.tokenizer is not None:
            models.tokenizer.warmup(self.channels, self.n_patches)
        models.classifier = self._first_classifier()
        self.outlets = self._open_outlets()
        if cfg.markers.enabled:
            m = cfg.markers
            self.markers = MarkerInlet(m.name, m.type, m.source_id,
                                       resolve_timeout=s.resolve_timeout)
        desc = inlet.description
        self._run_info = RunInfo(
            stream_name=desc.name, source_rate=desc.sfreq,
            expected_rate=desc.sfreq * inlet.replay_speed, n_source_channels=desc.n_channels,
            mapping=tuple(zip(self.source_channels, self.channels, strict=True)),
            engine=models.describe(), token_layout=models.token_layout)
        self.hub.report(self._run_info)
        if cfg.record.path is not None:
            self.recorder = self._record()
        ring = RingBuffer(desc.n_channels, int(np.ceil(s.buffer_seconds * desc.sfreq)))
        mailbox = Mailbox()
        processing = self.processing = ProcessingStage(
            cfg, inlet, self.markers, ring, self.paths(models.classifier),
            np.asarray(self.mapping.source_indices, dtype=int), unit_scale, mailbox, self.hub)
        inference = InferenceStage(
            models, mailbox, self.hub, self.outlets, self.channels, self.source_channels,
            cfg.budgets, processing.cuts[0].pre.resampler_latency_s, cfg.outlets.reconstruction,
            cfg.decisions.min_confidence,
        )

        def write(data: np.ndarray, ts: np.ndarray, breaks: np.ndarray) -> None:
            flags = int(ChannelFlag.RATE) if inlet.counters.rate_mismatch else 0
            ring.write(data, ts, breaks, flags)
            processing.data_ready.set()

        inlet.open()
        if self.markers is not None:  # read from when the EEG is: an earlier one has no window
            self.markers.open()
        self.acquisition = Acquisition(inlet, write,
                                       on_error=lambda err: self._failed("acquisition", err),
                                       report=self.hub.report)
        self._threads = [
            self.acquisition,
            self._stage_thread("processing", processing.run),
            self._stage_thread("inference", inference.run),
        ]
        if cfg.models.watch_classifier and models.classifier is not None:
            watcher = ClassifierWatcher(models.classifier.path, self.swap_classifier,
                                        lambda text: self._update_run(classifier_error=text))
            self._threads.append(self._stage_thread("watcher", watcher.run))
        for thread in self._threads:
            thread.start()
        logger.info("Pipeline started on %s with %s.", desc, models.describe())
        return self

    def stop(self) -> None:
        """Stop all threads and close the streams (idempotent)."""
        self._stop.set()
        if self.acquisition is not None and self.acquisition.is_alive():
            self.acquisition.stop()
        for thread in self._threads:
            thread.join(timeout=5.0)
        self._threads = []
        if self.recorder is not None:  # before the outlets close: it takes their last samples
            self.recorder.stop()
        for part in (self.inlet, self.markers, self.outlets):
            if part is not None:
                part.close()

    def __enter__(self) -> Pipeline:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        return any(t.is_alive() for t in self._threads)

    @property
    def n_patches(self) -> int:
        """Patches (seconds) per window, as the configuration sets them."""
        return self.config.windows.cut.n_patches

    def paths(self, classifier: BoundDecoder | None) -> list[WindowPath]:
        """How this run cuts its windows (``_paths``): the configuration's path for the
        tokenizer, and the path ``classifier`` was calibrated on (one path when they cut
        the same windows)."""
        assert self.models is not None
        cfg = self.config
        main = self._main_path()
        if classifier is None:
            return [main]
        own = WindowPath.of_classifier(classifier, cfg.windows.hop)
        if own.same_windows(main):
            return [main.merged(own)]
        return [main, own] if main.tokenize else [own]

    def _main_path(self) -> WindowPath:
        """The configuration's windows: what the tokenizer and the display get."""
        assert self.models is not None
        cfg = self.config
        return WindowPath(cfg.preprocessing, cfg.windows.cut, cfg.windows.hop, cfg.markers.labels,
                          tokenize=self.models.tokenizer is not None)

    def _load_classifier(self, path: Path) -> BoundDecoder:
        """A bound, warmed decoder that this run can feed, or a clear ValueError."""
        assert self.models is not None
        run_spec = self._main_path().window_spec(self.channels)
        classifier = self.models.load_classifier(path, self.channels, run_spec,
                                                 adapt=self.config.adapt)
        self._check_markers(classifier)
        return classifier

    def _first_classifier(self) -> BoundDecoder | None:
        """The configured classifier, bound to this stream's channels; None for none.

        A classifier the run cannot feed (channels the stream lacks, marker-locked windows
        without a marker stream) is an error when the user named it; the shipped default
        (a demo head for one recording's checkerboard task) is then left out with a warning,
        so ``run`` on any amplifier still shows tokens.
        """
        assert self.models is not None
        path = self.config.classifier_path()
        if path is None:
            return None
        try:
            classifier = self._load_classifier(path)
        except ValueError as err:
            if self.config.models.classifier is not None:
                raise
            logger.warning("The shipped classifier does not fit this stream (%s) Running "
                           "tokens only; calibrate your own with `neurorvq-stream calibrate`.",
                           err)
            return None
        return classifier

    def _check_markers(self, classifier: BoundDecoder) -> None:
        spec = classifier.decoder.spec
        if spec.mode == "markers" and not self.config.markers.enabled:
            raise ValueError(
                f"The classifier {str(classifier.path)!r} classifies windows locked to the "
                f"markers {', '.join(spec.labels)}; name the marker stream (--markers NAME, "
                "markers.name in the config).")

    # ---------------------------------------------------------------- set-up helpers
    def _map_channels(self, inlet: EEGInlet) -> float:
        """Map the stream's channels onto NeuroRVQ electrodes; their scale to microvolts."""
        chans = inlet.channels
        # LSL/XDF metadata gives locations in millimetres; the mapping takes metres.
        mapping = self.mapping = map_channels(
            [c.label for c in chans],
            types=[c.type for c in chans],
            positions={c.label: np.asarray(c.location) / 1e3 for c in chans if c.location},
            montage=self.config.mapping.montage,
        )
        self.source_channels = mapping.source_labels
        self.channels = tuple(mapping.names)
        logger.info("%s", mapping.summary())
        configured = self.config.stream.unit
        units = {chans[i].unit for i in mapping.source_indices}
        if configured is None and len(units) > 1:
            raise ValueError(
                f"The mapped channels of {inlet.description.name!r} mix units {units}; "
                "set stream.unit (--unit) to the one unit the amplifier sends.")
        with warnings.catch_warnings(record=True) as doubts:
            warnings.simplefilter("always")
            scale = unit_scale_from_lsl(units.pop() if len(units) == 1 else "", configured)
        for doubt in doubts:  # an assumed or overridden unit: say so once, in the log
            logger.warning("%s", doubt.message)
        return scale

    def _open_outlets(self) -> ResultOutlets | None:
        assert self.models is not None and self.inlet is not None
        o = self.config.outlets
        enabled = tuple(kind for kind, on in zip(
            KINDS, (o.predictions, o.decisions, o.tokens, o.reconstruction, o.metrics),
            strict=True) if on)
        if not enabled:
            return None
        desc = self.inlet.description
        identity = claim_identity(
            OutletIdentity.derive(desc.name, desc.source_id, o.name, o.source_id),
            configured=o.name is not None or o.source_id is not None,
            input_name=desc.name, input_uid=self.inlet.info.uid())
        hop = round(self.config.windows.hop * MODEL_RATE)
        return ResultOutlets(
            identity, self.channels, self.n_patches,
            hop_samples=min(self.n_patches * round(MODEL_RATE), max(1, hop)),
            meta=self._meta(), token_layout=self.models.token_layout,
            classifier=self.models.classifier, enabled=enabled,
        )

    def _record(self) -> Recorder:
        """Start LabRecorder on the input streams and every open outlet (by uid)."""
        assert self.inlet is not None
        infos = [self.inlet.info, *([self.markers.info] if self.markers else []),
                 *(self.outlets.stream_infos() if self.outlets else [])]
        record = self.config.record
        return Recorder(record.path, [StreamQuery.of(info) for info in infos],
                        overwrite=record.overwrite).start()

    def _meta(self) -> dict[str, str]:
        """What produced the outlets' data, in their ``desc/neurorvq`` (recordings keep it)."""
        assert self.models is not None and self.inlet is not None
        cfg = self.config
        b = cfg.budgets
        return {
            "source_stream": self.inlet.description.name,
            "source_id": self.inlet.description.source_id,
            # the input stream instance: tells this run's outlets from replayed ones
            "source_uid": self.inlet.info.uid(),
            "tokenizer": str(cfg.models.tokenizer or cfg.tokenizer_path()),
            "engine": (self.models.tokenizer.describe() if self.models.tokenizer is not None
                       else "no tokenizer"),
            "mapping": ",".join(f"{a}:{b}" for a, b in zip(
                self.source_channels, self.channels, strict=True)),
            # the run's own window and preprocessing (a classifier's own are its metadata)
            **{key: str(value) for key, value in dict(cfg.windows.cut).items()},
            "hop": str(cfg.windows.hop),
            **{key: str(value) for key, value in dict(cfg.preprocessing).items()},
            "min_confidence": str(cfg.decisions.min_confidence),
            "budget_preprocess_ms": str(b.preprocess_ms),
            "budget_inference_ms": str(b.inference_ms),
            "budget_end_to_end_ms": str(b.end_to_end_ms),
        }

    def _stage_thread(self, name: str, body: Callable[[threading.Event], None]) -> threading.Thread:
        def guarded() -> None:
            try:
                body(self._stop)
            except Exception as err:
                self._failed(name, err)

        return threading.Thread(target=guarded, name=f"neurorvq-{name}", daemon=True)

    def _failed(self, name: str, err: BaseException) -> None:
        """Record that a thread died: health "error", named on every status surface."""
        logger.error("Pipeline thread %r stopped: %s", name, err, exc_info=err)
        self.hub.report_failure(f"{name}: {type(err).__name__}: {err}")

    def _update_run(self, **changes: str) -> None:
        """Change and report what the run is (start-up, swaps and reloads write it)."""
        with self._run_lock:
            self._run_info = dataclasses.replace(self._run_info, **changes)
            self.hub.report(self._run_info)

    # ---------------------------------------------------------------- hot swap
    def swap_classifier(self, path: str | Path) -> None:
        """Load, check and warm a new classifier, then switch to it between two windows.

        Its windows may differ from the old one's (another window spec): the processing
        stage then cuts the new path from its next pass on. Windows already cut finish on
        the classifier they were cut for. Its predictions outlet is opened first and, in a
        recorded run, recorded before its first window is cut.
        """
        assert self.models is not None and self.processing is not None
        fresh = self._load_classifier(Path(path))
        if self.outlets is not None:
            new_stream = self.outlets.prepare(fresh)
            if new_stream is not None and self.recorder is not None:
                # LabRecorder records the streams it started on; this one is new.
                self.recorder.add(new_stream)
        self.processing.set_paths(self.paths(fresh))
        self.models.classifier = fresh
        self._update_run(engine=self.models.describe(), classifier_error="")
        logger.info("Classifier swapped to %s.", fresh.decoder.describe())
