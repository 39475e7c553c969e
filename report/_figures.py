"""The report's figures, one function each: a :class:`Session` in, a figure and caption out.

Figures are plain ``matplotlib.figure.Figure`` objects (no pyplot state), so reports can
be made from threads and tests without a display. Time axes are seconds since the first
EEG sample of the recording. What the pipeline counted and flagged is shown as its Metrics
stream published it, never detected again here by other rules.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.patches import Patch
from matplotlib.ticker import MaxNLocator

from neurorvq_stream.decoders import (
    TrialScorer,
    accuracy_at_coverage,
    calibration_report,
    reliability_bins,
)
from neurorvq_stream.engines import MODEL_RATE
from neurorvq_stream.engines._format import PATCH_SAMPLES
from neurorvq_stream.streamer import read_decision
from neurorvq_stream.streamer._outlets import Decision

from ._session import Session, Stream

#: The pipeline's counters in the stream health figure: one small axes per group
#: (its y label, its Metrics channels), so that a few large counts do not flatten the rest.
COUNTER_GROUPS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("samples lost", ("samples_lost",)),
    ("gaps, stalls,\nfailed threads", ("gaps", "stalls", "failed_threads")),
    ("windows", ("windows_dropped", "windows_rejected", "deadline_misses", "inference_errors")),
    ("markers", ("markers_skipped",)),
)
#: Colours of the flag kinds, in their bit order; red is kept for the loss bands.
FLAG_COLORS = ("tab:orange", "tab:purple", "tab:brown", "tab:olive", "tab:cyan", "tab:pink")
#: Counters whose step up means that samples did not reach the pipeline.
LOSS_COUNTERS = ("gaps", "samples_lost", "stalls")


@dataclass(frozen=True)
class Budgets:
    """Latency budgets in ms (``streamer`` run configuration ``budgets:``)."""

    preprocess: float
    inference: float
    end_to_end: float
    source: str  # where the numbers come from, said in the captions

    def of(self, stage: str) -> float | None:
        return getattr(self, stage, None) if stage != "source" else None


def _empty(fig: Figure, message: str) -> Figure:
    """A figure that says what is missing instead of an empty frame."""
    ax = fig.add_subplot()
    ax.text(0.5, 0.5, message, ha="center", va="center", wrap=True, fontsize=11)
    ax.set_axis_off()
    return fig


def _legend_outside(ax: Axes, **kwargs: object) -> None:
    """The legend right of the axes, where it hides no data."""
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=7, borderaxespad=0,
              **kwargs)


def counter_steps(metrics: Stream, label: str, since: float) -> np.ndarray:
    """``(k, 3)`` start, end and increase of each step up of the cumulative counter ``label``.

    The pipeline publishes its counters with every Metrics sample, so a step is known to
    lie between two samples (the first one between ``since`` and the first sample, counted
    from 0). Empty when the stream has no such channel.
    """
    values = metrics.channel(label)
    if values is None or not len(values):
        return np.empty((0, 3))
    v = np.concatenate([[0.0], np.nan_to_num(values.astype(float))])
    t = np.concatenate([[since], metrics.times])
    up = np.flatnonzero(np.diff(v) > 0)
    return np.column_stack([t[up], t[up + 1], v[up + 1] - v[up]])


def window_flags(metrics: Stream) -> tuple[list[str], np.ndarray]:
    """Channels and their published per-window flag bitmasks ``(n_windows, C)``."""
    channels = [lab.removeprefix("flags_") for lab in metrics.labels if lab.startswith("flags_")]
    bits = np.zeros((len(metrics.times), len(channels)), dtype=np.int64)
    for k, channel in enumerate(channels):
        bits[:, k] = np.nan_to_num(metrics.channel(f"flags_{channel}").astype(float))
    return channels, bits


def first_flag(bits: np.ndarray, flag_bits: dict[str, int]) -> np.ndarray:
    """0 where no flag is set, else 1 + the position in ``flag_bits`` of the first one set."""
    first = np.zeros(bits.shape, dtype=int)
    for k, bit in reversed(list(enumerate(flag_bits.values()))):
        first[(bits & bit) != 0] = k + 1
    return first


def _final(metrics: Stream, label: str) -> int | None:
    values = metrics.channel(label)
    return int(np.nan_to_num(values[-1])) if values is not None and len(values) else None


def _draw_rate(ax: Axes, session: Session) -> float:
    """Samples recorded per bin and the pipeline's measured rate, in % of nominal."""
    eeg, metrics, t0 = session.eeg, session.metrics, session.t0
    span = eeg.times[-1] - t0
    bin_s = max(1.0, float(np.ceil(span / 600)))
    edges = np.arange(0.0, span + bin_s, bin_s)
    counts, _ = np.histogram(eeg.times - t0, edges)
    ax.stairs(100 * counts / (bin_s * eeg.srate), edges, color="tab:blue", baseline=None,
              label=f"recorded per {bin_s:g} s")
    rate = metrics.channel("measured_rate_hz") if metrics is not None else None
    if rate is not None:
        ax.step(metrics.times - t0, 100 * rate.astype(float) / eeg.srate, where="post",
                color="tab:orange", label="pipeline's measured rate")
    ax.set_ylim(0, max(110.0, ax.get_ylim()[1]))
    ax.set_ylabel("EEG rate\n(% of nominal)")
    ax.set_title(f"{eeg.name}: {eeg.data.shape[1]} ch @ {eeg.srate:g} Hz")
    _legend_outside(ax)
    return bin_s


def _draw_flags(ax: Axes, session: Session) -> tuple[list[str], np.ndarray, list[str]]:
    """The published flags per window (a cell ends at its window's last sample)."""
    from matplotlib.colors import ListedColormap

    metrics = session.metrics
    order = np.argsort(metrics.times, kind="stable")
    t = metrics.times[order] - session.t0
    channels, bits = window_flags(metrics)
    bits = bits[order]
    kinds = metrics.flag_bits or {"flagged (bits not described)": -1}
    if not channels:
        ax.text(0.5, 0.5, "no flags_<channel> channel published", ha="center",
                transform=ax.transAxes)
        return channels, bits, list(kinds)
    # cells [max(previous window's end, end - window length), end]; no window: left blank
    start = np.maximum(t - session.window_seconds, np.concatenate([[-np.inf], t[:-1]]))
    edges = np.column_stack([start, t]).ravel()
    cells = np.full((len(channels), 2 * len(t) - 1), np.nan)
    cells[:, ::2] = first_flag(bits, kinds).T
    colors = ["#e6e6e6", *(FLAG_COLORS[k % len(FLAG_COLORS)] for k in range(len(kinds)))]
    ax.pcolormesh(edges, np.arange(len(channels) + 1) - 0.5, np.ma.masked_invalid(cells),
                  cmap=ListedColormap(colors), vmin=-0.5, vmax=len(kinds) + 0.5)
    ax.set_ylim(len(channels) - 0.5, -0.5)
    step = -(-len(channels) // 25)  # at most 25 names on the axis
    ax.set_yticks(range(0, len(channels), step), channels[::step], fontsize=6)
    ax.set_ylabel("channel")
    handles = [Patch(color=c, label=name) for c, name in zip(colors, ["ok", *kinds], strict=True)]
    _legend_outside(ax, handles=handles, title="flag")
    return channels, bits, list(kinds)


def stream_health(session: Session) -> tuple[Figure, str]:
    """Stream health as the pipeline published it: rate, loss and window counters, flags.

    Nothing is detected again here: gaps, lost samples and stalls are the pipeline's own
    counters stepping up between two Metrics samples, and the channel flags are its
    ``flags_<channel>`` bitmasks, one per window.
    """
    fig = Figure(figsize=(10, 10), layout="constrained")
    eeg, metrics = session.eeg, session.metrics
    if eeg is None or len(eeg.times) < 2:
        return _empty(fig, "The recording holds no EEG stream."), "No EEG stream recorded."
    if metrics is None or not len(metrics.times):
        bin_s = _draw_rate(fig.add_subplot(), session)
        return fig, (f"{len(eeg.times)} EEG samples recorded (per {bin_s:g} s, % of nominal). "
                     "No metrics stream recorded: no counters or flags to show.")
    groups = [(ylabel, [lab for lab in labels if lab in metrics.labels])
              for ylabel, labels in COUNTER_GROUPS]
    groups = [(ylabel, labels) for ylabel, labels in groups if labels]
    axes = fig.subplots(len(groups) + 2, 1, sharex=True,
                        height_ratios=[1.2, *([0.7] * len(groups)), 2.4])
    t0 = session.t0
    bin_s = _draw_rate(axes[0], session)
    for ax, (ylabel, labels) in zip(axes[1:-1], groups, strict=True):
        for label in labels:
            ax.step(metrics.times - t0, metrics.channel(label), where="post", label=label)
        ax.yaxis.set_major_locator(MaxNLocator(integer=True, nbins=3))
        top = max(1.0, *(np.nanmax(metrics.channel(label), initial=0.0) for label in labels))
        ax.set_ylim(-0.05 * top, 1.1 * top)
        ax.set_ylabel(ylabel)
        _legend_outside(ax)
    channels, bits, kinds = _draw_flags(axes[-1], session)
    axes[-1].set_xlabel("time (s)")
    losses = [counter_steps(metrics, label, t0) for label in LOSS_COUNTERS]
    for a, b, _ in np.concatenate(losses) - [t0, t0, 0]:
        for ax in axes:
            ax.axvspan(a, b, color="tab:red", alpha=0.25, lw=0)
    totals = {label: _final(metrics, label) for _, labels in COUNTER_GROUPS for label in labels}
    said = ", ".join(f"{label.replace('_', ' ')} {n}" for label, n in totals.items()
                     if n is not None)
    per_kind = ", ".join(f"{name} {int(np.any(bits & bit, axis=0).sum())}"
                         for name, bit in metrics.flag_bits.items())
    flagged = int(np.any(bits != 0, axis=0).sum())
    caption = (
        f"{len(eeg.times)} EEG samples recorded over {eeg.times[-1] - t0:.1f} s (top, per "
        f"{bin_s:g} s, with the rate the pipeline measured). The pipeline's counters as its "
        f"Metrics stream published them with each of {len(metrics.times)} windows, cumulative "
        f"since it started: {said or 'none recorded'}; red bands: between the two Metrics "
        f"samples across which gaps, samples lost or stalls stepped up. Bottom: the quality "
        f"flags it published per window and channel (flags_<channel> bitmasks, bits named in "
        f"the stream's desc/flags: {', '.join(kinds)}; a cell with several flags shows the "
        f"first listed; blank: no window): {flagged} of {len(channels)} channels flagged in "
        f"some window{f' ({per_kind})' if per_kind else ''}.")
    return fig, caption


def _stage_values(metrics: Stream) -> dict[str, np.ndarray]:
    values = {}
    for label in metrics.labels:
        if label.startswith("latency_"):
            v = metrics.channel(label).astype(float)
            values[label.removeprefix("latency_")] = v[np.isfinite(v)]
    return values


def latency_distributions(session: Session, budgets: Budgets) -> tuple[Figure, str]:
    """Per-stage latency distributions (log scale) against their budgets."""
    fig = Figure(figsize=(10, 4.5), layout="constrained")
    metrics = session.metrics
    if metrics is None or not len(metrics.times):
        return _empty(fig, "No metrics stream recorded."), "No metrics stream recorded."
    values = {k: v for k, v in _stage_values(metrics).items() if len(v)}
    if not values:
        return _empty(fig, "The metrics stream has no latency channel."), "No latency channel."
    ax = fig.add_subplot()
    names = list(values)
    ax.boxplot([np.maximum(values[k], 1e-3) for k in names], orientation="horizontal",
               tick_labels=names, whis=(1, 99), showfliers=True,
               flierprops={"markersize": 2, "alpha": 0.4})
    for row, name in enumerate(names, start=1):
        budget = budgets.of(name)
        if budget is not None:
            ax.plot([budget, budget], [row - 0.4, row + 0.4], color="tab:red", lw=2,
                    label="budget" if row == 1 or name == "preprocess" else None)
    ax.set_xscale("log")
    ax.set_xlabel("latency (ms, log scale); whiskers 1st-99th percentile")
    handles, labels = ax.get_legend_handles_labels()
    if handles:
        ax.legend(handles[:1], labels[:1], loc="lower right")
    rows = "; ".join(f"{k}: p50 {np.percentile(v, 50):.1f}, p99 {np.percentile(v, 99):.1f} ms"
                     for k, v in values.items())
    return fig, f"{len(metrics.times)} windows. {rows}. Budgets (red): {budgets.source}."


def end_to_end_over_time(session: Session, budgets: Budgets) -> tuple[Figure, str]:
    """End-to-end latency of every window over the session, late ones in red."""
    fig = Figure(figsize=(10, 3.5), layout="constrained")
    metrics = session.metrics
    e2e = metrics.channel("latency_end_to_end") if metrics is not None else None
    if e2e is None or not len(e2e):
        return _empty(fig, "No end-to-end latency recorded."), "No end-to-end latency recorded."
    ax = fig.add_subplot()
    t = metrics.times - session.t0
    late = e2e > budgets.end_to_end
    ax.scatter(t[~late], e2e[~late], s=6, color="tab:blue", label="within budget")
    ax.scatter(t[late], e2e[late], s=10, color="tab:red", label="late")
    ax.axhline(budgets.end_to_end, color="tab:red", ls="--", lw=1, label="budget")
    ax.set_xlabel("time (s)")
    ax.set_ylabel("end-to-end latency (ms)")
    ax.legend(loc="upper right", fontsize=8)
    finite = e2e[np.isfinite(e2e)]
    caption = (f"Source time of a window's last sample to its outlet push. p50 "
               f"{np.median(finite):.1f} ms, p99 {np.percentile(finite, 99):.1f} ms; "
               f"{int(late.sum())} of {len(e2e)} windows over the {budgets.end_to_end:g} ms "
               f"budget ({budgets.source}).")
    return fig, caption


@dataclass(frozen=True)
class ScoredPredictions:
    """One predictions stream (one classifier's classes) and its decisions, scored.

    ``times`` are the LSL times of the decisions that answer a trial of its classes and
    ``running`` the balanced accuracy after each of them (the scorer's running value).
    """

    stream: Stream
    scorer: TrialScorer
    times: np.ndarray
    running: np.ndarray


def _nearest_gap(times: np.ndarray, at: np.ndarray) -> np.ndarray:
    """Distance from each of ``at`` to the nearest of ``times`` (not empty)."""
    ordered = np.sort(times)
    after = np.searchsorted(ordered, at).clip(0, len(ordered) - 1)
    before = (after - 1).clip(0)
    return np.minimum(np.abs(ordered[after] - at), np.abs(at - ordered[before]))


def _publishers(times: np.ndarray, decisions: list[Decision],
                streams: list[Stream]) -> np.ndarray:
    """Index into ``streams`` of the predictions stream each decision was published beside.

    A decision is stamped like its prediction, so it belongs to the stream holding the
    prediction nearest its time among those with as many classes as it has probabilities
    (a rejected window's decision has none: nearest in time alone); -1 when none fits.
    """
    width = np.array([-1 if d.probabilities is None else len(d.probabilities)
                      for d in decisions])
    gaps = np.stack([np.where((width < 0) | (width == len(s.labels)),
                              _nearest_gap(s.times, times), np.inf) for s in streams])
    return np.where(np.isfinite(gaps.min(axis=0)), gaps.argmin(axis=0), -1)


def _scored(stream: Stream, times: np.ndarray, decisions: list[Decision]) -> ScoredPredictions:
    """``decisions`` (at ``times``) scored against the trials of ``stream``'s classes, in one
    pass that also keeps the running balanced accuracy."""
    classes = tuple(stream.labels)
    markers = json.loads(stream.meta.get("classifier_class_markers", "{}")) or {
        c: [c] for c in classes}
    scorer = TrialScorer(classes, markers)
    kept, running = [], []
    for t, d in zip(times, decisions, strict=True):
        if scorer.add(d.marker, d.marker_time, d.decision, d.probabilities) is not None:
            kept.append(t)
            running.append(scorer.balanced_accuracy())
    return ScoredPredictions(stream, scorer, np.asarray(kept), np.asarray(running))


def score_decisions(session: Session) -> list[ScoredPredictions]:
    """The recorded decisions scored against the trials they answer, per predictions stream.

    Each decision names the marker of its trial, and the classifier's ``class_markers``
    (its predictions stream's metadata) say which class that marker belongs to, so no
    decision is paired with a marker by timing. One entry per predictions stream that
    published (in order; a swap to other classes starts the next one), with no trial
    when the decisions stream was not recorded.
    """
    streams = [s for s in session.predictions if len(s.times)]
    if not streams:
        return []
    rows = session.decisions
    times = rows.times if rows is not None else np.empty(0)
    decisions = [read_decision(list(row)) for row in rows.data] if rows is not None else []
    owner = _publishers(times, decisions, streams)
    return [_scored(stream, times[owner == k], [d for d, o in zip(decisions, owner, strict=True)
                                                 if o == k])
            for k, stream in enumerate(streams)]


def _per_stream(parts: list[tuple[ScoredPredictions, str]]) -> str:
    """Caption parts joined, each named after its predictions stream when there are several
    (by source_id: the streams of one run share their name)."""
    if len(parts) == 1:
        return parts[0][1]
    return "; ".join(f"{scored.stream.source_id}: {text}" for scored, text in parts)


def predictions_over_time(session: Session) -> tuple[Figure, str]:
    """Class probabilities of every predictions stream with the class markers, the swaps to
    another classifier's classes, each classifier's running balanced accuracy and the run's
    own estimate of its accuracy."""
    fig = Figure(figsize=(10, 5.5), layout="constrained")
    every = score_decisions(session)
    if not every:
        return _empty(fig, "No predictions recorded."), "No predictions recorded."
    t0 = session.t0
    classes = list(dict.fromkeys(c for scored in every for c in scored.stream.labels))
    colors = {name: f"C{k}" for k, name in enumerate(classes)}
    ax_p, ax_acc = fig.subplots(2, 1, sharex=True, height_ratios=[2, 1])
    for pred in (scored.stream for scored in every):
        for k, name in enumerate(pred.labels):
            ax_p.plot(pred.times - t0, pred.data[:, k].astype(float), "o-", ms=3, lw=0.6,
                      alpha=0.8, color=colors[name], label=f"P({name})")
    for t, m in session.markers:
        if m in colors:
            ax_p.axvline(t - t0, color=colors[m], lw=1, alpha=0.6, ls=":")
    for scored in every[1:]:
        for ax in (ax_p, ax_acc):
            ax.axvline(scored.stream.times.min() - t0, color="k", lw=1.5, label="swap")
    parts = []
    for scored in every:
        pred, scorer = scored.stream, scored.scorer
        chance = 1 / len(pred.labels)
        ax_acc.hlines(chance, pred.times.min() - t0, pred.times.max() - t0, color="grey",
                      ls="--", lw=1, label="chance")
        if scorer.trials:
            ax_acc.step(scored.times - t0, scored.running, where="post", color="k",
                        label="running balanced accuracy")
        final = (f"{scorer.balanced_accuracy():.3f} over {len(scorer.decided)} decided of "
                 f"{len(scorer.trials)} trials (coverage {scorer.coverage():.2f})"
                 if scorer.trials else "n/a")
        parts.append((scored, f"{len(pred.times)} predictions of {', '.join(pred.labels)}, "
                              f"balanced accuracy {final} (chance {chance:.2f})"))
    estimated = _draw_estimated_accuracy(ax_acc, session)
    if not any(scored.scorer.trials for scored in every) and estimated is None:
        ax_acc.text(0.5, 0.5, "no decision answers a trial of the classes",
                    ha="center", transform=ax_acc.transAxes)
    ax_p.set_ylabel("probability")
    ax_p.set_ylim(-0.02, 1.02)
    ax_p.set_title("predictions (dots) and class markers (dotted, same colour)")
    ax_acc.set_ylim(0, 1.02)
    ax_acc.set_ylabel("accuracy")
    ax_acc.set_xlabel("time (s)")
    for ax, where, columns in ((ax_p, "upper right", len(classes) + 1),
                               (ax_acc, "lower right", 2)):
        handles, labels = ax.get_legend_handles_labels()
        once = dict(zip(labels, handles, strict=True))  # a class or swap named once
        ax.legend(once.values(), once.keys(), loc=where, fontsize=8, ncol=columns)
    swaps = (f" on {len(every)} streams, one per classifier's classes (black line: the "
             "swap to the next)" if len(every) > 1 else "")
    caption = (f"{sum(len(s.stream.times) for s in every)} predictions{swaps}; each decision "
               f"is scored against the trial its marker opened. {_per_stream(parts)}.")
    if estimated is not None:
        caption += (f" Dash-dot: the accuracy the run estimated (Metrics; from the "
                    f"decoder's committee where it has one and the classes of the trials "
                    f"before), {estimated:.3f} at the end.")
    return fig, caption


def _draw_estimated_accuracy(ax: Axes, session: Session) -> float | None:
    """The run's own accuracy estimate (committee, cued trials) as the Metrics outlet
    published it, window by window; its last value (None where the run published none)."""
    metrics = session.metrics
    values = metrics.channel("estimated_accuracy") if metrics is not None else None
    if values is None or not np.isfinite(values).any():
        return None
    ax.step(metrics.times - session.t0, values, where="post", color="tab:blue", ls="-.",
            label="estimated accuracy (the run's own)")
    return float(values[np.isfinite(values)][-1])


def confusion(session: Session) -> tuple[Figure, str]:
    """Confusion matrix of the decided trials of each classifier (rows: the trial's class,
    columns: decided)."""
    from sklearn.metrics import ConfusionMatrixDisplay

    every = score_decisions(session)
    decided = [scored for scored in every if scored.scorer.decided]
    fig = Figure(figsize=(5 * max(1, len(decided)), 4.5), layout="constrained")
    if not every:
        return _empty(fig, "No predictions recorded."), "No predictions recorded."
    if not decided:
        classes = sorted({c for scored in every for c in scored.scorer.class_names})
        msg = (f"No decision answers a trial of {', '.join(classes)}; marker labels "
               f"seen: {', '.join(sorted({m for _, m in session.markers}))}.")
        return _empty(fig, msg), msg
    for ax, scored in zip(fig.subplots(1, len(decided), squeeze=False)[0], decided,
                          strict=True):
        scorer = scored.scorer
        ConfusionMatrixDisplay(scorer.confusion(), display_labels=scorer.class_names).plot(
            ax=ax, colorbar=False, cmap="Blues")
        if len(decided) > 1:
            ax.set_title(scored.stream.source_id, fontsize=9)
    parts = [(s, f"{len(s.scorer.decided)} decided trials of {len(s.scorer.trials)}")
             for s in decided]
    return fig, f"{_per_stream(parts)} (rows: the trial's class, columns: decided)."


def _draw_reliability(ax_rel: Axes, ax_cov: Axes, p: np.ndarray, y: np.ndarray) -> str:
    """One classifier's reliability diagram and accuracy against coverage; its numbers."""
    report = calibration_report(p, y)
    bins = reliability_bins(p, y)
    full = bins.count > 0
    centres = (bins.edges[:-1] + bins.edges[1:]) / 2
    ax_rel.bar(centres[full], bins.accuracy[full], width=0.09, color="tab:blue", alpha=0.7,
               label="accuracy in the bin")
    ax_rel.plot([0, 1], [0, 1], color="grey", ls="--", lw=1, label="calibrated")
    ax_rel.plot(bins.confidence[full], bins.accuracy[full], "o", color="k", ms=4,
                label="mean confidence")
    for x, n, a in zip(centres[full], bins.count[full], bins.accuracy[full], strict=True):
        ax_rel.text(x, min(a + 0.03, 0.97), str(n), ha="center", fontsize=7)
    ax_rel.set(xlim=(0, 1), ylim=(0, 1.02), xlabel="confidence (top probability)",
               ylabel="accuracy")
    ax_rel.legend(loc="upper left", fontsize=8)
    thresholds = np.linspace(1 / p.shape[1], 0.99, 40)
    rows = accuracy_at_coverage(p, y, thresholds)
    ax_cov.plot([r.coverage for r in rows], [r.balanced_accuracy for r in rows], "-",
                color="tab:green")
    ax_cov.set(xlim=(0, 1.02), ylim=(0, 1.02), xlabel="coverage (share of trials decided)",
               ylabel="balanced accuracy of the decided")
    return (f"{report.n} classified trials: balanced accuracy {report.balanced_accuracy:.3f}"
            f", mean confidence {report.mean_confidence:.3f} against accuracy "
            f"{report.accuracy:.3f}, ECE {report.ece:.3f} (10 bins), NLL {report.nll:.2f}")


def reliability(session: Session) -> tuple[Figure, str]:
    """Reliability diagram of the trials' probabilities, and accuracy against coverage, for
    each classifier (predictions stream) with classified trials.

    Made from the decisions, each scored against the trial its marker opened: does a
    probability of 0.8 come true 80 % of the time, and how accurate would a closed loop be
    that acts only above each confidence threshold (the share it acts on: coverage).
    """
    usable = [(scored, *scored.scorer.probabilities()) for scored in score_decisions(session)]
    usable = [(scored, p, y) for scored, p, y in usable if len(y) >= 2]
    fig = Figure(figsize=(10, 4 * max(1, len(usable))), layout="constrained")
    if not usable:
        message = "Fewer than two classified trials of the classifier's classes were recorded."
        return _empty(fig, message), message
    parts = []
    for (ax_rel, ax_cov), (scored, p, y) in zip(fig.subplots(len(usable), 2, squeeze=False),
                                                usable, strict=True):
        parts.append((scored, _draw_reliability(ax_rel, ax_cov, p, y)))
        named = f"{scored.stream.source_id}: " if len(usable) > 1 else ""
        ax_rel.set_title(f"{named}reliability (trials per bin)")
        ax_cov.set_title(f"{named}accuracy against coverage (confidence thresholds)")
    threshold = session.meta.get("min_confidence")
    caption = (f"{_per_stream(parts)}. Right: each point is a confidence threshold"
               + (f"; the run decided above {float(threshold):g}" if threshold else "") + ".")
    return fig, caption


def token_usage(tokens: Stream) -> tuple[np.ndarray, np.ndarray, int]:
    """Distinct codes and perplexity per (branch, level), and the number of windows."""
    n_b, n_l = int(tokens.layout.get("n_branches", 4)), int(tokens.layout.get("n_levels", 8))
    codes = tokens.data.reshape(len(tokens.data), n_b, n_l, -1).astype(np.int64)
    distinct = np.zeros((n_b, n_l), int)
    perplexity = np.zeros((n_b, n_l))
    for b in range(n_b):
        for lev in range(n_l):
            _, counts = np.unique(codes[:, b, lev], return_counts=True)
            p = counts / counts.sum()
            distinct[b, lev] = len(counts)
            perplexity[b, lev] = float(np.exp(-np.sum(p * np.log(p))))
    return distinct, perplexity, len(codes)


def codebook_usage(session: Session) -> tuple[Figure, str]:
    """Distinct codes used and usage perplexity for each branch and quantizer level."""
    fig = Figure(figsize=(10, 3.6), layout="constrained")
    tokens = session.tokens
    if tokens is None or not len(tokens.times):
        return _empty(fig, "No tokens recorded."), "No tokens recorded."
    distinct, perplexity, n = token_usage(tokens)
    branches = [f"branch {b + 1}" for b in range(distinct.shape[0])]
    for ax, values, title in zip(fig.subplots(1, 2), (distinct, perplexity),
                                 ("distinct codes used", "usage perplexity"), strict=True):
        image = ax.imshow(values, cmap="viridis", aspect="auto")
        for (b, lev), v in np.ndenumerate(values):
            ax.text(lev, b, f"{v:.0f}", ha="center", va="center", fontsize=7,
                    color="w" if v < values.max() * 0.6 else "k")
        ax.set_xticks(range(values.shape[1]), [str(k + 1) for k in range(values.shape[1])])
        ax.set_yticks(range(values.shape[0]), branches)
        ax.set_xlabel("quantizer level")
        ax.set_title(title)
        fig.colorbar(image, ax=ax, shrink=0.8)
    caption = (f"{n} windows of tokens ({tokens.data.shape[1]} per window). Perplexity is "
               "exp(entropy) of the code frequencies: the number of equally used codes that "
               "would give the same spread.")
    return fig, caption


def _contiguous_runs(times: np.ndarray, rate: float) -> list[np.ndarray]:
    breaks = np.flatnonzero(np.abs(np.diff(times) - 1 / rate) > 0.25 / rate) + 1
    return [run for run in np.split(np.arange(len(times)), breaks) if len(run) >= 20]


def reconstruction_examples(session: Session, n_examples: int = 3, n_channels: int = 4,
                            line_freq: float | None = 50.0,
                            band: tuple[float, float] = (0.5, 44.5), clip_uv: float = 500.0,
                            reference: str = "none") -> tuple[Figure, str]:
    """A few stretches of the model's input next to its reconstruction, z-scored.

    The input is the recorded EEG through the pipeline's own causal preprocessing (same
    re-reference, filters and 200 Hz grid), so it is what the tokenizer saw; both traces
    are z-scored with the input's mean and SD, and the error is their difference in those
    units.
    """
    from neurorvq_stream.streamer._preprocessing import Preprocessor, unit_scale

    fig = Figure(figsize=(10, 1.7 * n_channels + 0.6), layout="constrained")
    rec, eeg = session.reconstruction, session.eeg
    if rec is None or eeg is None or not len(rec.times):
        return _empty(fig, "No reconstruction (or no EEG) recorded."), "No reconstruction."
    pairs = dict(session.mapping)
    to_source = {dst: src for src, dst in pairs.items()}
    shared = [c for c in rec.labels if to_source.get(c, c) in eeg.labels]
    if not shared:
        msg = "The reconstruction's channels cannot be matched to the EEG's (no mapping)."
        return _empty(fig, msg), msg
    chosen = [shared[k] for k in np.linspace(0, len(shared) - 1, min(n_channels, len(shared)),
                                             dtype=int)]
    idx = [eeg.labels.index(to_source.get(c, c)) for c in chosen]
    scale = unit_scale(eeg.units[idx[0]]) or 1.0  # to microvolts; 1 where unit is unknown
    raw = eeg.data[:, idx].astype(np.float64)
    if reference == "average":  # the pipeline's common average: over every mapped channel
        mapped = [eeg.labels.index(src) for src in pairs if src in eeg.labels]
        raw = raw - eeg.data[:, mapped].mean(axis=1, keepdims=True)
    pre = Preprocessor(eeg.srate, len(idx), line_freq=line_freq, band=band,
                       clip_uv=clip_uv, unit_scale=scale)
    processed = pre.process(raw, eeg.times)
    x, x_t = processed.data, processed.times
    runs = _contiguous_runs(rec.times, MODEL_RATE)
    picks = [runs[k] for k in np.unique(np.linspace(0, len(runs) - 1, n_examples, dtype=int))]
    axes = fig.subplots(len(chosen), len(picks), sharex="col", squeeze=False)
    notes = []
    for col, run in enumerate(picks):
        run = run[-PATCH_SAMPLES:]  # the newest patch of the stretch
        t = rec.times[run]
        errors, corrs = [], []
        for row, name in enumerate(chosen):
            ax = axes[row, col]
            inp = np.interp(t, x_t, x[:, row])
            out = rec.channel(name)[run].astype(float)
            mu, sd = inp.mean(), inp.std() or 1.0
            z_in, z_out = (inp - mu) / sd, (out - mu) / sd
            ax.plot(t - session.t0, z_in, color="k", lw=0.8, label="input")
            ax.plot(t - session.t0, z_out, color="tab:orange", lw=0.8, label="reconstruction")
            ax.plot(t - session.t0, z_out - z_in, color="tab:red", lw=0.6, alpha=0.7,
                    label="error")
            errors.append(np.sqrt(np.mean((z_out - z_in) ** 2)))
            corrs.append(np.corrcoef(z_in, z_out)[0, 1] if np.std(z_out) > 0 else np.nan)
            if col == 0:
                ax.set_ylabel(f"{name}\n(z)")
        axes[0, col].set_title(f"t = {t[0] - session.t0:.1f} s: RMS error "
                               f"{np.mean(errors):.2f} SD, r = {np.nanmean(corrs):.2f}",
                               fontsize=9)
        axes[-1, col].set_xlabel("time (s)")
        notes.append(f"{np.mean(errors):.2f}")
    axes[0, 0].legend(fontsize=7, loc="upper left", ncol=3)
    caption = (f"{len(picks)} stretches, {len(chosen)} channels ({', '.join(chosen)}); input = "
               "recorded EEG through the pipeline's causal preprocessing. RMS z-scored error "
               f"per stretch: {', '.join(notes)} SD of the input.")
    return fig, caption
