"""The inference thread: mailbox -> models -> one ``WindowResult`` -> hub and LSL outlets.

Takes the next window (marker-locked events first, else the newest sliding window), drops
it when it waited too long to meet the end-to-end budget (counted as dropped and as a
deadline miss), runs the models its path feeds (the classifier only when the window was
not rejected for bad channels), decides (the most probable class when its calibrated
confidence reaches ``decisions.min_confidence``, else "undecided"; "rejected" for a window
with too many flagged channels), builds the window's result once and publishes it. A
window that still ends up late (inference or end-to-end over budget) is published,
stamped, and counted as a miss. An exception inside the models is logged and
counted; the window is skipped and the other threads go on. The stage reports its own
counts (``InferenceCounts``) and nothing else; the metrics sample of a window carries that
window's own latencies and flags.

Latency of a window = ``local_clock()`` just before the outlet push minus the source time
of its last 200 Hz sample. That sample sits ``resampler_latency_s`` behind the newest
source sample (the resampler's look-ahead), so this latency includes that constant.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections import Counter

from neurorvq_stream.decoders import REJECTED, UNDECIDED, TrialScorer
from neurorvq_stream.decoders._trials import decide
from neurorvq_stream.engines._format import PATCH_SAMPLES

from ._config import BudgetConfig
from ._mailbox import Mailbox, QueuedWindow
from ._models import BoundDecoder, Models
from ._outlets import ResultOutlets
from ._quality import count_by_kind
from ._results import InferenceCounts, ResultHub, WindowResult

logger = logging.getLogger("neurorvq_stream")


class InferenceStage:
    """Thread body of the inference stage; see the module docstring."""

    def __init__(
        self,
        models: Models,
        mailbox: Mailbox,
        hub: ResultHub,
        outlets: ResultOutlets | None,
        channels: tuple[str, ...],
        source_channels: tuple[str, ...],
        budgets: BudgetConfig,
        resampler_latency_s: float,
        reconstruct: bool,
        min_confidence: float = 0.0,
    ) -> None:
        self.models = models
        self.mailbox = mailbox
        self.hub = hub
        self.outlets = outlets
        self.channels = channels
        self.source_channels = source_channels
        self.budgets = budgets
        self.resampler_latency_s = resampler_latency_s
        self.reconstruct = reconstruct
        self.min_confidence = min_confidence
        self._infer_ema: float | None = None
        self._warned_budget = False
        self._flagged_windows: Counter[str] = Counter()
        self.counts = InferenceCounts()
        self._trials = TrialScorer((), {})

    def run(self, stop: threading.Event) -> None:
        import pylsl

        while not stop.is_set():
            item = self.mailbox.take(0.1)
            if item is None:
                continue
            self._count(queue_depth=self.mailbox.depth)
            if self._would_miss(pylsl.local_clock() - item.window.t_last):
                c = self.counts
                self._count(late=c.late + 1, windows_expired=c.windows_expired + 1)
                continue
            self._infer(item)

    def _infer(self, item: QueuedWindow) -> None:
        import pylsl

        window = item.window
        tokenizer = self.models.tokenizer if window.tokenize else None
        classifier = window.classifier if not window.rejected else None
        truth = window.classifier.truth(window.label) if window.classifier else None
        latency: dict[str, float] = {}
        tokens = probabilities = None
        try:
            t0 = time.perf_counter()
            if tokenizer is not None:
                tokens = tokenizer.run(window.data, self.channels, reconstruct=self.reconstruct)
                latency.update({stage: s * 1e3 for stage, s in tokens.timings.items()})
            if classifier is not None:
                probabilities, seconds = classifier.predict(window.data, truth)
                latency["classify"] = seconds * 1e3
            infer_s = time.perf_counter() - t0
        except Exception as err:
            self._count(inference_errors=self.counts.inference_errors + 1,
                        error=f"inference: {err}")
            logger.exception("Inference failed on window %d; acquisition goes on.",
                             window.index)
            return
        self._infer_ema = infer_s if self._infer_ema is None \
            else 0.8 * self._infer_ema + 0.2 * infer_s
        latency.update(preprocess=item.preprocess_s * 1e3, inference=infer_s * 1e3,
                       wait=(t0 - item.posted) * 1e3)
        class_names = window.classifier.class_names if window.classifier is not None else ()
        decision = (REJECTED if window.rejected and window.classifier is not None
                    else decide(probabilities, class_names, self.min_confidence)
                    if probabilities is not None else None)
        if self.outlets is not None and window.classifier is not None:
            self.outlets.set_classifier(window.classifier)
        latency["end_to_end"] = (pylsl.local_clock() - window.t_last) * 1e3
        result = WindowResult(
            index=window.index, t_last=window.t_last, channels=self.channels,
            source_channels=self.source_channels, signal=window.data,
            n_patches=window.data.shape[1] // PATCH_SAMPLES,
            tokens=tokens.tokens if tokens is not None else None,
            reconstruction=tokens.reconstruction if tokens is not None else None,
            probabilities=probabilities, class_names=class_names, latency=latency,
            flags=window.flags, rejected=window.rejected, markers=window.markers,
            label=window.label, marker_time=window.marker_time,
            truth=truth,
            decision=decision,
            gap=window.gap, display=window.display,
        )
        if self.outlets is not None:
            self.outlets.push(result)
        self._count_result(result, window.classifier,
                           late=infer_s * 1e3 > self.budgets.inference_ms)
        self.hub.publish(result)
        if self.outlets is not None:
            self.outlets.push_metrics(result, self.hub.status())

    def _count(self, **changes: object) -> None:
        """Change this stage's counts and report them (it is their only writer)."""
        self.counts = dataclasses.replace(self.counts, **changes)
        self.hub.report(self.counts)

    def _count_result(self, result: WindowResult, classifier: BoundDecoder | None,
                      late: bool) -> None:
        """Counters for the status line, metrics outlet and summary."""
        c = self.counts
        # A late window is already computed: published (stamped, so consumers can judge)
        # and counted late.
        late = late or result.latency["end_to_end"] > self.budgets.end_to_end_ms
        self._flagged_windows.update(result.flagged_channels().keys())
        flags = result.flags if result.flags is not None else ()
        decided = result.decision in result.class_names
        if result.class_names and result.class_names != self._trials.class_names:
            # A new classifier's classes (windows of the tokenizer's own path have none)
            self._trials = TrialScorer(result.class_names, {n: (n,) for n in result.class_names})
        self._trials.add(result.truth, result.marker_time, result.decision or "",
                         result.probabilities)
        self._count(windows_done=c.windows_done + 1, late=c.late + int(late),
                    windows_rejected=c.windows_rejected + int(result.rejected),
                    windows_decided=c.windows_decided + int(decided),
                    windows_undecided=c.windows_undecided + int(result.decision == UNDECIDED),
                    trials=len(self._trials.trials), trials_decided=len(self._trials.decided),
                    trial_accuracy=self._trials.balanced_accuracy(),
                    estimated_accuracy=self._estimated_accuracy(classifier),
                    flag_counts=tuple(count_by_kind(flags).items()),
                    channel_flag_windows=tuple(self._flagged_windows.items()))

    def _estimated_accuracy(self, classifier: BoundDecoder | None) -> float:
        """The classifier's own estimate (nan before its session can give one); windows of
        a path without a classifier keep the last value."""
        if classifier is None:
            return self.counts.estimated_accuracy
        return classifier.session.confidence.estimated_accuracy()

    def _would_miss(self, age_s: float) -> bool:
        """Drop a window that a fresh one could beat: it waited too long to meet the budget.

        Even a fresh window is ``resampler_latency_s`` old. When that plus the inference
        time already exceeds the budget, no window can meet it; dropping them all would
        show nothing, so they run (each counted as a miss) and a warning says why.
        """
        budget_s = self.budgets.end_to_end_ms / 1e3
        if self._infer_ema is None:
            return False
        fresh_s = self.resampler_latency_s + self._infer_ema
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
