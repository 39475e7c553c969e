"""Calibration: labelled epochs (live or from a recorded file) -> a decoder set -> the best one.

Epochs come from the live pipeline itself (``streamer.Pipeline`` in marker mode, no
model, no outlets), or from a recording file run through the same mapping,
preprocessing and marker-locked cutting (``_data.preprocess_recording``), so a file and
its live replay give the same epochs. The epochs used are exactly the windows ``run``
would classify: one with too many flagged channels is left out and counted (the live
path's ``rejected``; from a file the same ``assess_window`` on the same sample flags), and
a stream ``run`` would flag (a rate or unit that is wrong) is refused with ``run``'s own
words, whatever epochs came before the check knew. The decoder kinds are cross-validated
and calibrated on those epochs (``_decoder_set``); the best by cross-validation (or the
one asked for) is saved with a sidecar carrying its :class:`decoders.WindowSpec`, so
``run`` applies it as it was trained. The command line is ``neurorvq-stream calibrate``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from neurorvq_stream.decoders import KINDS, WindowSpec
from neurorvq_stream.engines import Window, shipped_model
from neurorvq_stream.streamer import Pipeline, ResultHub, RunConfig, load_recording
from neurorvq_stream.streamer._quality import assess_window

from ._cards import write_card
from ._data import class_marker_map, marker_windows, preprocess_recording
from ._decoder_set import (
    FittedDecoder,
    LabelledEpochs,
    add_committee,
    choose,
    file_suffix,
    fit_decoders,
)

# What calibrate trains unless told otherwise: every kind but the full fine-tune, which
# takes minutes per fold on a CPU (``--full-finetune`` adds it).
DEFAULT_KINDS = tuple(k for k in KINDS if k != "neurorvq-head-full")


def parse_classes(items: Sequence[str]) -> dict[str, tuple[str, ...]]:
    """``["face=face-upright,face-inverted", "house=house-upright"]`` or plain marker labels."""
    groups: dict[str, tuple[str, ...]] = {}
    for item in items:
        name, sep, labels = item.partition("=")
        markers = tuple(m.strip() for m in labels.split(",") if m.strip()) if sep else (name,)
        if not name.strip() or not markers:
            raise ValueError(f"Class {item!r} names no marker; write LABEL or "
                             "NAME=LABEL[,LABEL...].")
        if name in groups:
            raise ValueError(f"Class {name!r} is given twice.")
        groups[name.strip()] = markers
    seen = [m for ms in groups.values() for m in ms]
    if len(groups) < 2:
        raise ValueError(f"Calibration needs at least two distinct classes, got {list(groups)}.")
    if len(set(seen)) != len(seen):
        raise ValueError(f"A marker label belongs to two classes: {seen}.")
    return groups


def epoch_config(config: RunConfig, class_markers: Mapping[str, Sequence[str]]) -> RunConfig:
    """``config`` as a recorder of marker-locked epochs: no models, no outlets.

    Stream, preprocessing, mapping and window settings are kept: they are the spec the
    decoder will be applied with. Windows lock on the classes' markers only.
    """
    if not config.markers.enabled:
        raise ValueError("Calibration needs a marker stream: give --markers NAME "
                         "(markers.name in the config).")
    return config.override(**{
        "windows.mode": "markers", "models.tokenizer": "none", "models.classifier": "none",
        "models.watch_classifier": False, "outlets.predictions": False,
        "outlets.tokens": False, "outlets.reconstruction": False, "outlets.metrics": False,
        "markers.labels": [m for ms in class_markers.values() for m in ms],
    })


def epoch_window(config: RunConfig) -> Window:
    """One epoch: the run's window in marker mode (``windows.marker_length`` long when set)."""
    return config.windows.model_copy(update={"mode": "markers"}).cut


def window_spec(config: RunConfig, channels: Sequence[str],
                class_markers: Mapping[str, Sequence[str]]) -> WindowSpec:
    """The spec of marker-locked epochs cut under ``config`` from ``channels``."""
    labels = [m for ms in class_markers.values() for m in ms]
    return WindowSpec.of(epoch_window(config), labels, channels, config.preprocessing)


@dataclass
class Epochs:
    """Labelled epochs that ``run`` would classify, and what was left out.

    ``x`` (n, C, n_patches*200) uV, ``y`` class indices, ``channels`` their names;
    ``rejected`` counts per class the epochs with more flagged channels than
    ``quality.max_flagged_fraction`` (``run`` does not classify those).
    """

    x: np.ndarray
    y: np.ndarray
    channels: tuple[str, ...]
    rejected: dict[str, int]


def _checked(xs: Sequence[np.ndarray], ys: Sequence[int], channels: Sequence[str],
             rejected: dict[str, int], doubts: Sequence[str], source: str,
             config: RunConfig) -> Epochs:
    """Refuse what ``run`` would not classify; otherwise the usable epochs."""
    if doubts:
        raise ValueError(f"{source}: {'; '.join(doubts)}. run flags every window of such a "
                         "stream and classifies none, so calibrate trains on none either.")
    if not xs:
        n = sum(rejected.values())
        raise ValueError(
            f"{source}: none of the {n} epochs is usable: each has more than "
            f"{config.quality.max_flagged_fraction:.0%} of its channels flagged (flat, clipped "
            "or NaN; see quality in the run configuration), and run classifies no such window.")
    return Epochs(np.stack(xs).astype(np.float32), np.asarray(ys, dtype=np.int64),
                  tuple(channels), rejected)


def record_epochs(
    config: RunConfig, class_markers: Mapping[str, Sequence[str]],
    n_per_class: int | None = None, duration: float | None = None,
    timeout: float | None = None, progress: bool = True,
    on_start: Callable[[], None] | None = None,
) -> Epochs:
    """Collect every marker-locked epoch of the classes from the live streams.

    Stops when every class has ``n_per_class`` epochs (more of a class are kept), after
    ``duration`` seconds, or on Ctrl+C; with none of the three it records until Ctrl+C.
    ``timeout`` bounds the wait for ``n_per_class``: reaching it is an error that says what
    was collected. ``on_start`` runs once the streams are open (e.g. to start a replay).
    Epochs ``run`` would not classify are left out and counted (``Epochs.rejected``) and
    do not count towards ``n_per_class``.
    """
    config = epoch_config(config, class_markers)
    label_class = {m: i for i, ms in enumerate(class_markers.values()) for m in ms}
    counts = dict.fromkeys(class_markers, 0)
    rejected = dict.fromkeys(class_markers, 0)
    names = list(class_markers)
    xs: list[np.ndarray] = []
    ys: list[int] = []
    hub = ResultHub(history=4096)
    bar = tqdm(desc="calibration epochs", disable=not progress, unit="epoch")
    last = -1
    with Pipeline(config, hub) as pipeline:
        start = time.monotonic()
        if on_start is not None:
            on_start()
        try:
            while True:
                elapsed = time.monotonic() - start
                if n_per_class is not None and min(counts.values()) >= n_per_class:
                    break
                if duration is not None and elapsed >= duration:
                    break
                if timeout is not None and elapsed > timeout:
                    if hub.status().stream_warnings:  # run's words say more than a timeout
                        _checked(xs, ys, pipeline.channels, rejected,
                                 hub.status().stream_warnings,
                                 f"Stream '{config.stream.name}'", config)
                    raise TimeoutError(
                        f"Calibration timed out after {timeout:g} s with {counts} usable "
                        f"epochs of the {n_per_class} per class asked for ({rejected} left "
                        "out as run would not classify them); check that "
                        f"'{config.markers.name}' sends the markers "
                        f"{sorted(label_class)}.")
                for result in hub.wait_for(last, timeout=0.5):
                    last = result.index
                    if result.label in label_class:
                        k = label_class[result.label]
                        if result.rejected:
                            rejected[names[k]] += 1
                            continue
                        counts[names[k]] += 1
                        xs.append(result.signal)
                        ys.append(k)
                        bar.update(1)
                        bar.set_postfix(counts)
        except KeyboardInterrupt:
            print(f"\nStopped recording: {counts}.")
        channels = pipeline.channels
    bar.close()
    if not xs and not any(rejected.values()):
        raise ValueError(f"No epoch of {sorted(label_class)} arrived from "
                         f"'{config.markers.name}'; check the marker stream and the labels.")
    return _checked(xs, ys, channels, rejected, hub.status().stream_warnings,
                    f"Stream '{config.stream.name}'", config)


def read_epochs(
    path: str | Path, config: RunConfig, class_markers: Mapping[str, Sequence[str]],
) -> Epochs:
    """Every epoch of the classes in a recording file (EDF/BDF/FIF/XDF with markers) that
    ``run`` would classify.

    The file goes through what a live replay of it goes through (channel mapping, unit,
    preprocessing, marker-locked windows under ``config``, the quality check and the unit
    check), so both give the same epochs.
    """
    rec = preprocess_recording(load_recording(path, montage=config.mapping.montage), config,
                               name=repr(str(path)))
    names = list(class_markers)
    label_class = {m: i for i, ms in enumerate(class_markers.values()) for m in ms}
    epoch = epoch_window(config)
    windows = marker_windows(rec, class_markers, epoch.marker_offset, epoch.n_patches)
    if not windows:
        raise ValueError(f"No {names} window fits in {rec.subject}.")
    rejected = dict.fromkeys(names, 0)
    xs, ys = [], []
    for w in windows:
        k = label_class[w.label]
        if assess_window(w.data, w.flags, config.quality, config.preprocessing.clip_uv).rejected:
            rejected[names[k]] += 1
        else:
            xs.append(w.data)
            ys.append(k)
    return _checked(xs, ys, rec.channels, rejected, rec.warnings, f"Recording {rec.subject}",
                    config)


@dataclass
class Calibration:
    """What one calibration did: the decoders it trained, the one saved and why."""

    fitted: list[FittedDecoder]
    chosen: FittedDecoder
    reason: str
    path: Path
    #: Epochs per class left out because ``run`` would not classify them.
    rejected: dict[str, int] = field(default_factory=dict)

    def rejected_line(self) -> str:
        """What was left out, for the summary ("" when nothing was)."""
        n = sum(self.rejected.values())
        if not n:
            return ""
        per = ", ".join(f"{c} {k}" for c, k in self.rejected.items())
        return (f"Left out {n} epochs that run would not classify (too many flagged "
                f"channels): {per}.")

    def table(self) -> str:
        return format_table(self.fitted, self.chosen)


def format_table(fitted: Sequence[FittedDecoder], chosen: FittedDecoder | None = None) -> str:
    """One row per decoder: CV balanced accuracy (mean ± sd over folds), range, time, and
    the calibration out of fold (ECE; mean confidence against accuracy)."""
    first = fitted[0].scores
    counts = ", ".join(f"{c} {n}" for c, n in first["n_per_class"].items())
    lines = [f"Epochs per class: {counts}. Chance: {first['chance']:.3f} (95% bound "
             f"{first['chance_95']:.3f}); {len(first['cv_folds'])}-fold cross-validation.",
             "", f"| {'decoder':<20} | CV balanced accuracy | folds min-max | train s "
             "| OOF ECE | OOF confidence / accuracy |",
             f"|{'-' * 22}|{'-' * 22}|{'-' * 15}|{'-' * 9}|{'-' * 9}|{'-' * 27}|"]
    for f in sorted(fitted, key=lambda f: -f.scores["cv_mean"]):
        s = f.scores
        mark = " *" if f is chosen else ""
        calibration = (f"| {s['oof_ece']:.3f}   | {s['oof_mean_confidence']:.3f} / "
                       f"{s['oof_accuracy']:.3f}             |" if "oof_ece" in s
                       else "| -       | -                         |")
        lines.append(f"| {f.kind + mark:<20} | {s['cv_mean']:.3f} ± {s['cv_std']:.3f}        "
                     f"| {min(s['cv_folds']):.2f}-{max(s['cv_folds']):.2f}     "
                     f"| {s['train_seconds']:>7.1f} {calibration}")
    lines += ["", "Calibration out of fold: a check of the fit on this session; another "
                  "session is usually less accurate than these folds."]
    return "\n".join(lines)


def output_path(output: Path, kind: str) -> Path:
    """``output`` with the suffix of the chosen kind's format (.skops or .safetensors)."""
    output = Path(output)
    suffix = file_suffix(kind)
    return output if output.suffix == suffix else output.with_suffix(suffix)


def calibrate(
    config: RunConfig, classes: Sequence[str] | Mapping[str, Sequence[str]], output: Path,
    recording: Path | None = None, kinds: Sequence[str] = DEFAULT_KINDS,
    decoder: str | None = None, foundation_model: Path | None = None,
    n_per_class: int | None = None, duration: float | None = None,
    timeout: float | None = None, seed: int = 0, progress: bool = True,
    on_start: Callable[[], None] | None = None,
) -> Calibration:
    """Record (or read) labelled epochs, train ``kinds``, save the chosen decoder.

    ``output`` takes the chosen kind's suffix (.skops, or .safetensors for a NeuroRVQ
    head); a model card (``.md``, ``.card.json``) is written next to it.
    """
    class_markers = class_marker_map(classes)
    if decoder is not None and decoder not in kinds:
        kinds = (*kinds, decoder)
    foundation_model = foundation_model or shipped_model("foundation")
    if foundation_model is None:
        kinds = tuple(k for k in kinds if not KINDS[k].uses_foundation_model)
    if recording is not None:
        got = read_epochs(recording, config, class_markers)
        source = f"recording {Path(recording).name!r}"
    else:
        got = record_epochs(config, class_markers, n_per_class, duration, timeout, progress,
                            on_start)
        source = f"LSL stream {config.stream.name!r} (markers {config.markers.name!r})"
    epochs = LabelledEpochs(got.x, got.y, tuple(class_markers),
                            window_spec(config, got.channels, class_markers), class_markers)
    fitted = fit_decoders(kinds, epochs, foundation_model, seed, progress)
    chosen, reason = choose(fitted, decoder)
    add_committee(chosen, seed)
    chosen.provenance.update(trained_by="neurorvq-stream calibrate", source=source,
                             recorded_at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
    path = chosen.save(output_path(output, chosen.kind))
    _write_card(path, chosen, fitted, reason, source)
    return Calibration(fitted, chosen, reason, path, got.rejected)


def _write_card(path: Path, chosen: FittedDecoder, fitted: Sequence[FittedDecoder],
                reason: str, source: str) -> None:
    spec = chosen.epochs.spec
    s = chosen.scores
    write_card(
        path, f"Calibrated decoder: {' vs '.join(chosen.epochs.class_names)}",
        f"{chosen.kind} ({chosen.provenance.get('summary', '')}), trained on "
        f"{sum(s['n_per_class'].values())} epochs from {source}. Chosen: {reason}.\n\n"
        f"Window: {spec.describe()}.",
        {"Chosen decoder": {"kind": chosen.kind, "CV balanced accuracy": s["cv_mean"],
                            "CV spread (sd over folds)": s["cv_std"], "chance": s["chance"],
                            "chance 95% bound": s["chance_95"],
                            "epochs per class": s["n_per_class"],
                            "training seconds": s["train_seconds"]},
         "All decoders (CV balanced accuracy)": {
             f.kind: f"{f.scores['cv_mean']:.3f} ± {f.scores['cv_std']:.3f}" for f in fitted}},
    )
