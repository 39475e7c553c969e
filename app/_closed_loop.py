"""Closed loop on real data: the held-out recording through the live pipeline, scored.

``neurorvq-stream demo --task checker`` replays sub-s02 (never seen in training) with its
markers as live LSL streams, runs the pipeline with the shipped checkerboard decoder
(chosen by cross-validation on sub-s01; its file says which windows it takes), reads the
predictions back from the predictions outlet with a plain pylsl inlet, pairs each with the
marker it answers and prints the running balanced accuracy. At the end the same decoder
classifies the same epochs offline (``training.preprocess_recording`` +
``marker_epochs``): the two must agree, because the live path computes what the offline
path does.

Pairing: a marker-locked window starts ``offset`` after its marker and is ``n_patches``
seconds long, so its prediction is stamped ``offset + n_patches - 1/200`` recording
seconds after the marker (the player's clock runs ``speed`` times faster).
"""

from __future__ import annotations

import argparse
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from sklearn.metrics import balanced_accuracy_score

from neurorvq_stream.decoders import Decoder, default_decoder, load_decoder
from neurorvq_stream.engines import PATCH_SAMPLES
from neurorvq_stream.streamer import (
    MarkerFormat,
    Pipeline,
    Player,
    ResultHub,
    RunConfig,
    bundled_recording,
    load_recording,
    use_loopback_config,
)
from neurorvq_stream.training import CHECKER_CLASSES, marker_epochs, preprocess_recording

HELD_OUT = "s02"


@dataclass
class ScoredWindow:
    """One prediction read back from LSL, paired with the marker it answers."""

    marker_time: float
    label: str
    probabilities: np.ndarray


@dataclass
class PredictionScorer:
    """Pairs predictions (LSL time, probabilities) with the markers they answer.

    ``marker_class`` maps each marker label that locks a window to its class.
    """

    classes: tuple[str, ...]
    marker_class: dict[str, str]
    lag: float
    tolerance: float
    markers: list[tuple[float, str]] = field(default_factory=list)
    scored: list[ScoredWindow] = field(default_factory=list)
    unmatched: int = 0

    def add_marker(self, t: float, label: str) -> None:
        if label in self.marker_class:
            self.markers.append((t, self.marker_class[label]))

    def add_prediction(self, t: float, probabilities: np.ndarray) -> ScoredWindow | None:
        """Score a prediction against the marker ``lag`` before it; None if there is none."""
        if self.markers:
            errors = [abs(t - m - self.lag) for m, _ in self.markers]
            k = int(np.argmin(errors))
            if errors[k] <= self.tolerance:
                m, label = self.markers.pop(k)
                window = ScoredWindow(m, label, np.asarray(probabilities, dtype=np.float64))
                self.scored.append(window)
                return window
        self.unmatched += 1
        return None

    def balanced_accuracy(self) -> float:
        if not self.scored:
            return float("nan")
        truth = [self.classes.index(w.label) for w in self.scored]
        predicted = [int(np.argmax(w.probabilities)) for w in self.scored]
        return float(balanced_accuracy_score(truth, predicted))


@dataclass
class ClosedLoopReport:
    live: list[ScoredWindow]
    live_accuracy: float
    offline_accuracy: float
    offline_probabilities: np.ndarray
    offline_marker_times: np.ndarray
    windows_dropped: int
    deadline_misses: int
    unmatched: int

    def summary(self) -> str:
        diff = 100 * (self.live_accuracy - self.offline_accuracy)
        return (
            f"Closed loop on held-out sub-{HELD_OUT}: {len(self.live)} windows scored live, "
            f"balanced accuracy {self.live_accuracy:.3f}; offline, same model and epochs: "
            f"{self.offline_accuracy:.3f} ({diff:+.1f} points). Windows dropped "
            f"{self.windows_dropped}, deadline misses {self.deadline_misses}, predictions "
            f"without a marker {self.unmatched}."
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
) -> ClosedLoopReport:
    """Replay sub-s02 (up to ``tmax`` s) through the live pipeline and score it.

    ``speed`` > 1 replays faster than real time; the report counts dropped windows, which
    must stay at zero for the live and offline numbers to be comparable. Every marker
    window is scored, so the end-to-end budget is set far above the hop: latency is
    measured and reported, not used to drop windows here. The tokenizer runs only when
    ``tokenizer`` is given: the loop is about the decoder. ``record`` is an XDF file for
    the whole session (``neurorvq-stream report`` reads it).
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
        "preprocessing": {"line_freq": spec.line_freq, "notch": spec.notch,
                          "l_freq": spec.l_freq, "h_freq": spec.h_freq,
                          "reference": spec.reference, "clip_uv": spec.clip_uv},
        "mapping": {"montage": "biosemi128"},
        "models": {"tokenizer": str(tokenizer) if tokenizer else "none",
                   "classifier": str(classifier), "watch_classifier": False},
        "budgets": {"end_to_end_ms": 10_000.0, "inference_ms": 10_000.0},
        "outlets": {"source_id": outlet_id},
        "record": {"path": str(record) if record else None},
    })
    marker_class = {m: c for c, markers in decoder.class_markers.items() for m in markers}
    scorer = PredictionScorer(decoder.class_names, marker_class, tolerance=0.1,
                              lag=spec.marker_offset + spec.n_patches - 1 / PATCH_SAMPLES)
    hub = ResultHub()
    with Pipeline(config, hub):
        # Connected before the first sample is played, so the causal filters start from
        # the recording's first sample, as offline.
        (info,) = pylsl.resolve_byprop("source_id", f"{outlet_id}-predictions", 1, 10.0)
        predictions = pylsl.StreamInlet(info)
        (minfo,) = pylsl.resolve_byprop("name", f"{name}-Markers", 1, 10.0)
        markers = pylsl.StreamInlet(minfo)
        for inlet in (predictions, markers):
            inlet.open_stream(5.0)
        marker_format = MarkerFormat.of(markers.info(5.0))
        player.start()
        try:
            _score_until_done(player, predictions, markers, marker_format, scorer, print_every,
                              quiet)
        finally:
            player.stop()
            # Closed before the pipeline closes its outlets: an open inlet would try to
            # reconnect to them (liblsl logs "transmission broke off").
            for inlet in (predictions, markers):
                inlet.close_stream()
        status = hub.status()

    # Offline: the same file through the same mapping, preprocessing and window cutting.
    offline = preprocess_recording(replay, config, name=f"sub-{HELD_OUT}")
    x, y, onsets = marker_epochs(offline, decoder.class_markers, spec.marker_offset,
                                 spec.n_patches)
    reached = onsets + spec.marker_offset + spec.n_patches <= replay.duration
    rows = [offline.channels.index(c) for c in spec.channels]
    x, y, onsets = x[reached][:, rows], y[reached], onsets[reached]
    probabilities = decoder.probabilities(x)
    offline_accuracy = float(balanced_accuracy_score(y, probabilities.argmax(1)))
    return ClosedLoopReport(
        live=scorer.scored, live_accuracy=scorer.balanced_accuracy(),
        offline_accuracy=offline_accuracy, offline_probabilities=probabilities,
        offline_marker_times=onsets, windows_dropped=status.windows_dropped,
        deadline_misses=status.deadline_misses, unmatched=scorer.unmatched,
    )


def _score_until_done(player: Player, predictions, markers, marker_format: MarkerFormat,
                      scorer: PredictionScorer, print_every: int, quiet: bool) -> None:
    """Pull markers and predictions until the replay ended and its last window came back.

    LSL times become recording seconds: ``(t - t0) * speed`` undoes the player's clock.
    """
    classes = scorer.classes
    done_at = None
    while done_at is None or time.monotonic() < done_at:
        if done_at is None and not player.is_alive():
            done_at = time.monotonic() + 2.0 + scorer.lag / player.speed
        samples, stamps = markers.pull_chunk(timeout=0.0)
        for t, label in marker_format.events(samples, stamps):
            scorer.add_marker((t - player.t0) * player.speed, label)
        samples, stamps = predictions.pull_chunk(timeout=0.0)
        for p, t in zip(samples, stamps, strict=True):
            window = scorer.add_prediction((t - player.t0) * player.speed, np.asarray(p))
            if window is not None and not quiet and len(scorer.scored) % print_every == 0:
                shown = ", ".join(f"{c} {p:.2f}"
                                  for c, p in zip(classes, window.probabilities, strict=True))
                print(f"  {len(scorer.scored):4d} windows  running balanced accuracy "
                      f"{scorer.balanced_accuracy():.3f}  (last: {window.label}; {shown})")
        time.sleep(0.02)


def run_from_args(args: argparse.Namespace) -> int:
    """``demo --task checker``: run, print the running score and the live/offline summary."""
    tmax = None if args.duration is None else args.duration * args.speed
    print(f"Closed loop: replaying held-out sub-{HELD_OUT} at x{args.speed:g} through the live "
          "pipeline (marker-locked windows), scoring predictions read back from LSL ...")
    report = run_checker_closed_loop(
        speed=args.speed, tmax=tmax,
        classifier=Path(args.classifier) if args.classifier else None,
        tokenizer=Path(args.tokenizer) if args.tokenizer else None,
        record=Path(args.record) if args.record else None,
    )
    print(report.summary())
    if report.windows_dropped:
        print(f"warning: {report.windows_dropped} windows were dropped; replay slower "
              "(--speed) for a live score comparable with the offline one.")
        return 1
    return 0
