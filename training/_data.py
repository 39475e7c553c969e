"""Offline EEG for training and evaluation, computed exactly as the live pipeline computes it.

The two real recordings shipped by ``pylossless`` (BioSemi 128 channels, 256 Hz, faces /
houses / checkerboards) are run, start to end, through the live causal
:class:`streamer._preprocessing.Preprocessor` and mapped by electrode position onto the
NeuroRVQ electrodes with the live channel mapping. Epochs are then cut from that continuous
200 Hz signal at marker times, the way the live marker-locked window does, so a model
trained or evaluated here sees the same numbers as it does online.

Time mapping (the Preprocessor's documented convention): output sample ``k`` is aligned
with input position ``k * source_rate / 200``, i.e. it represents the source time
``t_first_input + k / 200`` (the resampler compensates its own delay; the causal filters'
group delay is a property of the signal and is left in, online and offline alike). Here
the recording starts at 0 s, so output ``k`` <-> ``k / 200`` s, the clock of the events.
Epochs are cut by the live ``MarkerLockedWindows`` itself, so a marker at source time
``t`` locks the same first sample (nearest to ``t + offset``) offline and online.
"""

from __future__ import annotations

import csv
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

import mne
import numpy as np

from neurorvq_stream.engines import MODEL_RATE
from neurorvq_stream.engines._format import PATCH_SAMPLES
from neurorvq_stream.streamer import bundled_recording
from neurorvq_stream.streamer._channel_mapping import map_channels
from neurorvq_stream.streamer._datasets import bundled_events
from neurorvq_stream.streamer._preprocessing import Preprocessor, unit_scale
from neurorvq_stream.streamer._quality import ChannelFlag, UnitCheck, unit_warning
from neurorvq_stream.streamer._windows import MarkerLockedWindows

if TYPE_CHECKING:
    from neurorvq_stream.streamer import Recording, RunConfig
    from neurorvq_stream.streamer._windows import Window

CHECKER_CLASSES = ("checker-left", "checker-right")
_CHUNK = 256  # source samples per chunk fed to the preprocessor, as an LSL inlet would


def read_events(path: Path) -> list[tuple[float, str]]:
    """(onset in seconds from the recording start, trial_type) rows of a BIDS events.tsv."""
    with path.open(encoding="utf-8-sig", newline="") as handle:
        rows = list(csv.DictReader(handle, delimiter="\t"))
    return [(float(row["onset"]), row["trial_type"]) for row in rows]


@dataclass(frozen=True)
class PreprocessedRecording:
    """A whole recording after live preprocessing and channel mapping.

    ``data`` is (n_samples, C) float32 microvolts at 200 Hz, ``times`` the source time in
    seconds (recording start = 0) that each row represents, ``channels`` the NeuroRVQ names,
    ``source_channels`` the BioSemi labels they come from, ``events`` (onset s, label).
    ``flags`` (n_samples, C) uint8 are the live path's sample flags (``ChannelFlag``: input
    NaN/inf, a unit that cannot be microvolts; None: not computed) and ``warnings`` what
    ``run`` would say of the stream (its unit check).
    """

    subject: str
    data: np.ndarray
    times: np.ndarray
    channels: tuple[str, ...]
    source_channels: tuple[str, ...]
    events: tuple[tuple[float, str], ...]
    flags: np.ndarray | None = None
    warnings: tuple[str, ...] = ()


def preprocess_continuous(
    signal: np.ndarray, source_rate: float, line_freq: float = 50.0,
    preprocessor: Preprocessor | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Run the live preprocessor over a whole (n, C) signal in LSL-sized chunks.

    Returns the 200 Hz output and the source time (first input sample = 0 s) of each
    output sample, from the preprocessor's own time mapping. ``preprocessor`` (fresh)
    replaces the default one (``line_freq`` notch, 0.5-44.5 Hz band).
    """
    pre = preprocessor or Preprocessor(source_rate, signal.shape[1], line_freq=line_freq)
    data, times, _ = _preprocess_flagged(signal, source_rate, pre)
    return data, times


def _preprocess_flagged(
    signal: np.ndarray, source_rate: float, pre: Preprocessor,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`preprocess_continuous` with the output's sample flags (n, C) uint8."""
    times = np.arange(len(signal)) / source_rate
    pieces = [pre.process(signal[start : start + _CHUNK], times[start : start + _CHUNK])
              for start in range(0, len(signal), _CHUNK)]
    out = np.concatenate([p.data for p in pieces], axis=0).astype(np.float32)
    return (out, np.concatenate([p.times for p in pieces]),
            np.concatenate([p.flags for p in pieces], axis=0))


def load_preprocessed(subject: str, line_freq: float = 50.0) -> PreprocessedRecording:
    """Read, preprocess and channel-map one bundled recording (a few seconds of CPU)."""
    edf, events_tsv = bundled_recording(subject), bundled_events(subject)
    raw = mne.io.read_raw_edf(edf, preload=True, verbose="error")
    mapping = map_channels(raw.ch_names, montage="biosemi128")
    # Preprocessing is per channel, so filtering only the mapped channels is the same.
    picks = list(mapping.source_indices)
    signal = raw.get_data(picks=picks, units="uV").T.astype(np.float64)
    data, times = preprocess_continuous(signal, raw.info["sfreq"], line_freq)
    return PreprocessedRecording(
        subject=subject,
        data=data,
        times=times,
        channels=mapping.names,
        source_channels=mapping.source_labels,
        events=tuple(read_events(events_tsv)),
    )


def preprocess_recording(
    recording: Recording, config: RunConfig, name: str = "recording"
) -> PreprocessedRecording:
    """A recording as the live pipeline would see it replayed: mapped, scaled, preprocessed.

    Channel mapping (labels, types, positions, ``mapping.montage``), unit scale
    (``stream.unit`` over the file's unit; none means uV) and the preprocessing settings
    are the pipeline's, so ``calibrate`` from a file cuts the epochs a live replay gives,
    with the sample flags the live path sets.
    """
    chans = recording.channels
    mapping = map_channels(
        [c.label for c in chans], types=[c.type for c in chans],
        positions={c.label: np.asarray(c.location) / 1e3 for c in chans if c.location},
        montage=config.mapping.montage,
    )
    picks = list(mapping.source_indices)
    units = {chans[i].unit for i in picks}
    unit = config.stream.unit or (units.pop() if len(units) == 1 else "")
    if config.stream.unit is None and len(units) > 1:
        raise ValueError(f"The mapped channels of {name} mix units {units}; set stream.unit "
                         "(--unit) to the one unit the recording holds.")
    scale = unit_scale(unit) if unit.strip() else 1.0
    if scale is None:
        raise ValueError(f"{name}: channel unit {unit!r} is not an EEG unit; set stream.unit "
                         "(--unit).")
    pre = Preprocessor.of(config.preprocessing, recording.sfreq, len(picks), scale)
    signal = recording.data[:, picks]
    data, times, flags = _preprocess_flagged(signal, recording.sfreq, pre)
    # The live unit check, on the whole file (one unit for all of it).
    unit = UnitCheck(recording.sfreq)
    unit.update(np.where(np.isfinite(signal), signal, np.nan) * scale)
    doubts = (unit_warning(unit.verdict),) if unit.verdict else ()
    if doubts:
        flags |= np.uint8(ChannelFlag.UNIT)
    return PreprocessedRecording(subject=name, data=data, times=times, channels=mapping.names,
                                 source_channels=mapping.source_labels,
                                 events=tuple(recording.events), flags=flags, warnings=doubts)


def class_marker_map(
    classes: Sequence[str] | Mapping[str, Sequence[str]],
) -> dict[str, tuple[str, ...]]:
    """Class name -> its marker labels; a plain list names classes by their own marker."""
    if isinstance(classes, Mapping):
        return {str(c): tuple(labels) for c, labels in classes.items()}
    return {str(c): (str(c),) for c in classes}


def bad_channels(
    rec: PreprocessedRecording, ratio: float = 5.0, skip_s: float = 5.0
) -> tuple[str, ...]:
    """Channels whose standard deviation exceeds ``ratio`` x the median channel's.

    A broken electrode (sub-s01's f4 carries 14x the median amplitude for the whole
    recording) is not EEG, and in a window it dominates every per-window normalization
    (the patch embedding's GroupNorm, the tokenizer's amplitude statistics, z-scoring).
    The first ``skip_s`` seconds (filter settling) are left out of the statistics.
    """
    std = rec.data[int(skip_s * MODEL_RATE) :].std(axis=0)
    return tuple(c for c, s in zip(rec.channels, std, strict=True) if s > ratio * np.median(std))


def repair_bad_channels(
    rec: PreprocessedRecording, bads: tuple[str, ...]
) -> PreprocessedRecording:
    """``rec`` with the ``bads`` replaced by spherical-spline interpolation from the others.

    Positions are mne's ``colin27_1005``, the ones the live channel mapping matched.
    """
    if not bads:
        return rec
    info = mne.create_info(list(rec.channels), MODEL_RATE, "eeg")
    raw = mne.io.RawArray(rec.data.T.astype(np.float64), info, verbose="error")
    raw.set_montage("colin27_1005", match_case=False, verbose="error")
    raw.info["bads"] = list(bads)
    raw.interpolate_bads(reset_bads=True, verbose="error")
    return replace(rec, data=raw.get_data().T.astype(np.float32))


def marker_epochs(
    rec: PreprocessedRecording,
    classes: Sequence[str] | Mapping[str, Sequence[str]] = CHECKER_CLASSES,
    offset: float = 0.0,
    n_patches: int = 1,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Marker-locked windows [marker + offset, + n_patches s], cut by the live scheduler.

    ``classes`` lists class names that are marker labels, or maps each class to its
    marker labels (e.g. face: face-upright, face-inverted). Returns ``X`` (n, C,
    n_patches*200) float32 uV, ``y`` (n,) class indices and the marker onsets (s).
    Markers whose window leaves the recording are skipped.
    """
    groups = class_marker_map(classes)
    labels = {m: i for i, markers in enumerate(groups.values()) for m in markers}
    windows = marker_windows(rec, classes, offset, n_patches)
    if not windows:
        raise ValueError(f"No {list(groups)} window fits in {_who(rec)}'s recording.")
    x = np.stack([w.data for w in windows]).astype(np.float32)
    y = np.asarray([labels[w.label] for w in windows], dtype=np.int64)
    return x, y, np.asarray([w.marker_time for w in windows])


def marker_windows(
    rec: PreprocessedRecording,
    classes: Sequence[str] | Mapping[str, Sequence[str]],
    offset: float = 0.0,
    n_patches: int = 1,
) -> list[Window]:
    """The live ERP mode's windows of the classes' markers, with their flags.

    The whole recording (with its sample flags) and its markers go through
    :class:`MarkerLockedWindows`, so the sample a window starts on, and the flags it
    carries, are the ones the live path gives.
    """
    groups = class_marker_map(classes)
    labels = {m for markers in groups.values() for m in markers}
    unknown = labels - {label for _, label in rec.events}
    if unknown:
        raise ValueError(f"Marker labels {sorted(unknown)} never occur in {_who(rec)}'s events.")
    duration = len(rec.data) / MODEL_RATE
    cutter = MarkerLockedWindows(offset, n_patches, history_s=duration + 1.0)
    cutter.feed(rec.data, rec.times, rec.flags)
    return [w for onset, label in rec.events if label in labels
            for w in cutter.add_marker(onset, label)]


def _who(rec: PreprocessedRecording) -> str:
    """'sub-s01' for the bundled subjects, else the recording's name."""
    return f"sub-{rec.subject}" if rec.subject in ("s01", "s02") else rec.subject


def continuous_windows(
    rec: PreprocessedRecording, n_patches: int = 4, hop_s: float = 2.0, start_s: float = 0.0,
    stop_s: float | None = None,
) -> np.ndarray:
    """Sliding (n, C, n_patches*200) windows for tokenizer and masked-token pretraining.

    Windows start at ``start_s`` (skipping the filters' settling time is the caller's
    choice) and stop before ``stop_s`` (source seconds), so a recording can be split in time.
    """
    length, hop = n_patches * PATCH_SAMPLES, round(hop_s * MODEL_RATE)
    first = int(np.searchsorted(rec.times, start_s))
    last = len(rec.data) if stop_s is None else int(np.searchsorted(rec.times, stop_s))
    starts = range(first, last - length + 1, hop)
    if not starts:
        raise ValueError(f"No {n_patches}-patch window fits between {start_s} s and {stop_s} s.")
    return np.stack([rec.data[s : s + length].T for s in starts]).astype(np.float32)
