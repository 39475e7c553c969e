"""Closed loop on real data: the held-out recording through the live pipeline, scored.

``neurorvq-stream demo --task checker`` replays sub-s02 (never seen in training) with its
markers as live LSL streams, runs the pipeline with the shipped checkerboard decoder
(chosen by cross-validation on sub-s01; its file says which windows it takes), reads the
decisions back from the pipeline's ``Decisions`` outlet with a plain pylsl inlet, and
scores each decision against the trial it answers (``decoders.TrialScorer``, the scorer
of the display and the report). At the end the same decoder classifies the same epochs
offline (``training.preprocess_recording`` + ``marker_epochs``): the two must agree,
because the live path computes what the offline path does, and both are scored by one
definition of balanced accuracy (``decoders._metrics``), so equal decisions give one float.

Pairing needs no timing rule: every decision carries its probabilities and the label and
LSL time of the marker that opened its trial.
"""

from __future__ import annotations

import argparse
import dataclasses
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from neurorvq_stream.decoders import Decoder, TrialScorer, default_decoder, load_decoder
from neurorvq_stream.decoders._metrics import balanced_accuracy
from neurorvq_stream.decoders._trials import ScoredTrial
from neurorvq_stream.streamer import (
    Pipeline,
    Player,
    ResultHub,
    RunConfig,
    bundled_recording,
    load_recording,
    read_decision,
    use_loopback_config,
)
from neurorvq_stream.training import marker_epochs, preprocess_recording
from neurorvq_stream.training._data import CHECKER_CLASSES

HELD_OUT = "s02"


@dataclass
class ClosedLoopReport:
    """The live trials (marker times in recording seconds) beside the offline evaluation."""

    live: list[ScoredTrial]
    live_accuracy: float
    coverage: float
    offline_accuracy: float
    offline_probabilities: np.ndarray
    offline_marker_times: np.ndarray
    windows_dropped: int
    windows_rejected: int
    deadline_misses: int
    warnings: tuple[str, ...]
    # the session's accuracy as its committee and past trials estimate it (nan: warm-up)
    live_estimated_accuracy: float = float("nan")
    offline_estimated_accuracy: float = float("nan")

    def summary(self) -> str:
        diff = 100 * (self.live_accuracy - self.offline_accuracy)
        return (
            f"Closed loop on held-out sub-{HELD_OUT}: {len(self.live)} trials scored live "
            f"(coverage {self.coverage:.2f}), balanced accuracy {self.live_accuracy:.3f}; "
            f"offline, same model and epochs: {self.offline_accuracy:.3f} ({diff:+.1f} "
            f"points). Windows dropped {self.windows_dropped}, rejected "
            f"{self.windows_rejected}, deadline misses {self.deadline_misses}."
            + (f" Accuracy the session estimated (committee, past trials' classes): "
               f"{self.live_estimated_accuracy:.3f} live, "
               f"{self.offline_estimated_accuracy:.3f} offline."
               if not np.isnan(self.live_estimated_accuracy) else "")
            + "".join(f" Warning: {w}." for w in self.warnings)
        )


def _checker_decoder(path: Path | None) -> tuple[Path, Decoder]:
    """The decoder file to score (default: the shipped checkerboard decoder) and its decoder."""
    path = path or default_decoder()
    if path is None:
        raise FileNotFoundError("No classifier given and none shipped in models/; pass "
                                "--classifier FILE (from `neurorvq-stream calibrate`).")
    decoder = load_decoder(path)
    if set(decoder.class_names) != set(CHECKER_CLASSES):
        raise ValueError(f"The checker task needs a decoder of {CHECKER_CLASSES}; {path} "
                         f"classifies {decoder.class_names}.")
    return path, decoder


def run_checker_closed_loop(
    speed: float = 1.0,
    tmax: float | None = None,
    classifier: Path | None = None,
    tokenizer: Path | None = None,
    print_every: int = 10,
    quiet: bool = False,
    record: Path | None = None,
    min_confidence: float = 0.0,
    adapt: bool = False,
) -> ClosedLoopReport:
    """Replay sub-s02 (up to ``tmax`` s) through the live pipeline and score it.

    ``speed`` > 1 replays faster than real time; the report counts dropped windows, which
    must stay at zero for the live and offline numbers to be comparable. Every marker
    window is scored, so the end-to-end budget is set far above the hop: latency is
    measured and reported, not used to drop windows here. The tokenizer runs only when
    ``tokenizer`` is given: the loop is about the decoder. ``record`` is an XDF file for
    the whole session (``neurorvq-stream report`` reads it). ``min_confidence`` is the
    run's decision threshold: trials below it stay undecided (the report's coverage).
    ``adapt`` re-centres the decoder on the session (``run --adapt``); offline, the same
    adapter then runs over the epochs in their order.
    """
    import pylsl

    use_loopback_config()
    classifier, decoder = _checker_decoder(classifier)
    spec = decoder.spec
    replay = load_recording(bundled_recording(HELD_OUT), montage="biosemi128", tmax=tmax)
    name = f"NeuroRVQ-Checker-{uuid.uuid4().hex[:6]}"
    player = Player(replay, name=name, speed=speed)
    outlet_id = f"neurorvq-closed-loop-{uuid.uuid4().hex[:6]}"
    config = RunConfig.from_dict({
        "stream": {"name": name},
        "markers": {"name": f"{name}-Markers"},
        "preprocessing": spec.preprocessing,
        "mapping": {"montage": "biosemi128"},
        "models": {"tokenizer": str(tokenizer) if tokenizer else "none",
                   "classifier": str(classifier), "watch_classifier": False},
        "decisions": {"min_confidence": min_confidence}, "adapt": adapt,
        "budgets": {"end_to_end_ms": 10_000.0, "inference_ms": 10_000.0},
        "outlets": {"source_id": outlet_id},
        "record": {"path": str(record) if record else None},
    })
    scorer = TrialScorer(decoder.class_names, decoder.class_markers)
    hub = ResultHub()
    with Pipeline(config, hub):
        # Connected before the first sample is played, so the causal filters start from
        # the recording's first sample, as offline.
        (info,) = pylsl.resolve_byprop("source_id", f"{outlet_id}-decisions", 1, 30.0)
        decisions = pylsl.StreamInlet(info)
        decisions.open_stream(30.0)
        player.start()
        try:
            _score_until_done(player, decisions, scorer, print_every, quiet)
        finally:
            player.stop()
            # Closed before the pipeline closes its outlets: an open inlet would try to
            # reconnect to them (liblsl logs "transmission broke off").
            decisions.close_stream()
        status = hub.status()
    # LSL times become recording seconds: ``(t - t0) * speed`` undoes the player's clock.
    live = [dataclasses.replace(t, marker_time=(t.marker_time - player.t0) * speed)
            for t in scorer.trials]

    # Offline: the same file through the same mapping, preprocessing and window cutting.
    offline = preprocess_recording(replay, config, name=f"sub-{HELD_OUT}")
    x, y, onsets = marker_epochs(offline, decoder.class_markers, spec.marker_offset,
                                 spec.n_patches)
    reached = onsets + spec.marker_offset + spec.n_patches <= replay.duration
    rows = [offline.channels.index(c) for c in spec.channels]
    x, y, onsets = x[reached][:, rows], y[reached], onsets[reached]
    session = decoder.session(adapt)
    probabilities = session.probabilities(x, y.tolist())
    return ClosedLoopReport(
        live=live, live_accuracy=scorer.balanced_accuracy(), coverage=scorer.coverage(),
        offline_accuracy=balanced_accuracy(probabilities, y), offline_probabilities=probabilities,
        offline_marker_times=onsets, windows_dropped=status.windows_dropped,
        windows_rejected=status.windows_rejected, deadline_misses=status.deadline_misses,
        warnings=status.stream_warnings,
        live_estimated_accuracy=status.inference.estimated_accuracy,
        offline_estimated_accuracy=session.confidence.estimated_accuracy(),
    )


def _score_until_done(player: Player, decisions, scorer: TrialScorer, print_every: int,
                      quiet: bool) -> None:
    """Score decisions until the replay ended and its last window came back."""
    done_at = None
    while done_at is None or time.monotonic() < done_at:
        if done_at is None and not player.is_alive():
            done_at = time.monotonic() + 5.0
        samples, _ = decisions.pull_chunk(timeout=0.0)
        for sample in samples:
            trial = read_decision(sample)
            scored = scorer.add(trial.marker, trial.marker_time, trial.decision,
                                trial.probabilities)
            if scored is not None and not quiet and len(scorer.trials) % print_every == 0:
                print(f"  {scorer.summary()}  (last: {scored.marker} -> {scored.decision}, "
                      f"{trial.confidence})")
        time.sleep(0.02)


def run_from_args(args: argparse.Namespace) -> int:
    """``demo --task checker``: run, print the running score and the live/offline summary."""
    tmax = None if args.duration is None else args.duration * args.speed
    print(f"Closed loop: replaying held-out sub-{HELD_OUT} at x{args.speed:g} through the live "
          "pipeline (marker-locked windows), scoring decisions read back from LSL ...")
    report = run_checker_closed_loop(
        speed=args.speed, tmax=tmax,
        classifier=Path(args.classifier) if args.classifier else None,
        tokenizer=Path(args.tokenizer) if args.tokenizer else None,
        record=Path(args.record) if args.record else None,
        min_confidence=args.min_confidence or 0.0, adapt=bool(args.adapt),
    )
    print(report.summary())
    if report.windows_dropped:
        print(f"warning: {report.windows_dropped} windows were dropped; replay slower "
              "(--speed) for a live score comparable with the offline one.")
        return 1
    return 0
