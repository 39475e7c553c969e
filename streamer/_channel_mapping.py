"""Map a stream's channels onto the 104 NeuroRVQ electrodes, by label or by position.

By label: case-insensitive, after stripping common amplifier decorations ("EEG Fp1",
"Cz-REF", "O1-LE", "T3 AV"). Old 10-20 names are mapped to their modern equivalents
(T3->T7, T4->T8, T5->P7, T6->P8), because they are the same scalp sites and modern
caps label them so. The NeuroRVQ list also holds t3..t6 (its pretraining data used both
namings); an old name stays as is only when the stream also has the modern name, so two
channels never land on one electrode.

By position, for caps whose labels are not 10-20 names (BioSemi A1..D32, EGI E1..): the
positions come from the stream's channel metadata or from a named mne montage, and are
matched to the standard 10-05 positions (mne's ``colin27_1005``) of the NeuroRVQ
electrodes. Both sets are centred on their best-fitting sphere and compared as
directions, so a spherical cap model and a real head shape line up; distances are
reported as chords on a 95 mm head. The assignment is one-to-one (Hungarian method) and
pairs farther apart than ``max_distance_mm`` are dropped. Electrodes without a standard
position (eog, loc, roc, sp1/sp2, t1/t2, ccp7/8, cfc*, p08), the ear references a1/a2
and the old names t3..t6 (same sites as t7/t8/p7/p8) are never position targets.

``auto`` mode uses positions for every channel when positions are known and fewer than
half the EEG channels match by label (a coded cap: BioSemi's "A1" is not the ear); else
labels first, with positions filling in the channels whose labels did not match. A cap
with numbered labels (A1..H32, E1..) and no positions is an error, not a label match.
Channels typed as non-EEG in the metadata, and labels that name references, triggers or
auxiliary inputs, are dropped before any matching.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import mne
import numpy as np
from scipy.optimize import linear_sum_assignment

from neurorvq_stream.engines import ELECTRODES

HEAD_RADIUS_MM = 95.0
OLD_NAMES = {"t3": "t7", "t4": "t8", "t5": "p7", "t6": "p8"}

_PREFIX = re.compile(r"^(eeg)[\s_:\-]*", re.IGNORECASE)
_SUFFIX = re.compile(r"[\s_\-]+(ref|le|re|ar|avg|ave|av|a1a2|m1m2|cz)$", re.IGNORECASE)
_NON_EEG_LABEL = re.compile(
    r"^(status|trigger|trig\d*|stim\d*|marker|sti\s*\d*|exg\d*|ecg\d*|ekg\d*|emg\d*|resp\w*|"
    r"gsr\d*|acc\w*|aux\d*|sample\w*|counter|battery|cms|drl|ref|gnd|ground|heog|veog|"
    r"[xyz]|x_dir|y_dir|z_dir|photo\w*|erg\d*|plet\w*|temp\w*)$",
    re.IGNORECASE,
)
# Labels of caps that number their electrodes (BioSemi A1..H32, EGI E1..E256).
_CODED_LABEL = re.compile(r"^([a-h]\d{1,2}|e\d{1,3})$", re.IGNORECASE)
_EEG_TYPES = {"", "eeg"}
# Ear references, and old names whose sites the modern names already cover.
_NO_POSITION_TARGETS = {"a1", "a2", "t3", "t4", "t5", "t6"}


@dataclass(frozen=True)
class ChannelMapping:
    """Which stream channels feed the model, and under which NeuroRVQ electrode name.

    Entries are in stream order: output channel ``i`` is stream column
    ``source_indices[i]``, labelled ``source_labels[i]`` in the stream and ``names[i]``
    for the model, found by ``methods[i]`` ('label', 'old-name' or 'position') at
    ``distances_mm[i]`` (NaN for label matches). ``dropped`` holds
    ``(stream label, reason)`` for every stream channel that is not used.
    """

    source_indices: tuple[int, ...]
    names: tuple[str, ...]
    source_labels: tuple[str, ...]
    methods: tuple[str, ...]
    distances_mm: tuple[float, ...]
    dropped: tuple[tuple[str, str], ...]

    def summary(self) -> str:
        """Two lines: how many channels are used, matched how, and why the others are not."""
        by_label = sum(m != "position" for m in self.methods)
        found = [d for d in self.distances_mm if not np.isnan(d)]
        spread = f" ({min(found):.0f}-{max(found):.0f} mm away)" if found else ""
        lines = [f"Channel mapping: {len(self.names)} of {len(self.names) + len(self.dropped)} "
                 f"stream channels used, {by_label} by label, {len(self.names) - by_label} by "
                 f"position{spread}"]
        if self.dropped:
            # "duplicate of Fz" and "duplicate of Cz" are one reason
            why = Counter(reason.split(" of ")[0] for _, reason in self.dropped)
            lines.append(f"Dropped {len(self.dropped)}: "
                         + ", ".join(f"{n} {reason}" for reason, n in why.most_common()))
        return "\n".join(lines)

    def describe(self) -> str:
        """A readable table of the mapping, for the console (``--verbose``) and the display."""
        lines = [
            f"Channel mapping: {len(self.names)} stream channels -> NeuroRVQ electrodes, "
            f"{len(self.dropped)} dropped",
            f"{'#':>4}  {'stream':<14}{'electrode':<11}{'method':<10}{'distance':>9}",
        ]
        rows = zip(
            self.source_indices,
            self.source_labels,
            self.names,
            self.methods,
            self.distances_mm,
            strict=True,
        )
        for src, label, name, method, dist in rows:
            distance = "" if np.isnan(dist) else f"{dist:.1f} mm"
            lines.append(f"{src:>4}  {label:<14}{name:<11}{method:<10}{distance:>9}")
        if self.dropped:
            lines.append("Dropped: " + ", ".join(f"{lbl} ({why})" for lbl, why in self.dropped))
        return "\n".join(lines)


def normalize_label(label: str) -> str:
    """Lower-case electrode name with amplifier prefixes and reference suffixes removed."""
    key = _PREFIX.sub("", label.strip())
    key = _SUFFIX.sub("", key)
    return key.strip().lower()


def _standard_positions() -> dict[str, np.ndarray]:
    montage = mne.channels.make_standard_montage("colin27_1005")
    by_name = {n.lower(): p for n, p in montage.get_positions()["ch_pos"].items()}
    return {
        name: np.asarray(by_name[name])
        for name in ELECTRODES
        if name in by_name and name not in _NO_POSITION_TARGETS
    }


def _directions(points: np.ndarray) -> np.ndarray:
    """Unit vectors from the centre of the best-fitting sphere (the origin if too few).

    Directions make the match independent of units (m or mm) and of head size.
    """
    centred = points
    if points.shape[0] >= 10:
        # |p|^2 = 2 c.p + (r^2 - |c|^2): linear least squares in (c, r^2 - |c|^2).
        design = np.column_stack([2 * points, np.ones(points.shape[0])])
        solution, _, rank, _ = np.linalg.lstsq(design, (points**2).sum(axis=1), rcond=None)
        if rank == 4:  # a flat or degenerate layout has no sphere: keep the given origin
            centred = points - solution[:3]
    norms = np.linalg.norm(centred, axis=1, keepdims=True)
    if np.any(norms == 0):
        raise ValueError(
            "A channel position lies exactly at the head centre; positions must be on the "
            "scalp in a head frame with the origin inside the head (x right, y front, z up)."
        )
    return centred / norms


def _montage_positions(montage: str, labels: Sequence[str]) -> dict[int, np.ndarray]:
    try:
        ch_pos = mne.channels.make_standard_montage(montage).get_positions()["ch_pos"]
    except ValueError as err:
        raise ValueError(
            f"Unknown montage {montage!r}; choose one of "
            f"{', '.join(mne.channels.get_builtin_montages())}."
        ) from err
    lookup = {name.lower(): np.asarray(pos) for name, pos in ch_pos.items()}
    return {
        i: lookup[label.strip().lower()]
        for i, label in enumerate(labels)
        if label.strip().lower() in lookup
    }


def map_channels(
    labels: Sequence[str],
    types: Sequence[str] | None = None,
    positions: Mapping[str, Sequence[float]] | None = None,
    montage: str | None = None,
    max_distance_mm: float = 20.0,
    use_positions: Literal["auto", "always", "never"] = "auto",
) -> ChannelMapping:
    """Map stream channels to NeuroRVQ electrodes (see the module docstring for the rules).

    ``types`` are the LSL channel types (non-EEG ones are dropped); ``positions`` maps a
    stream label to its (x, y, z) in a head frame (x right, y front, z up; metres or
    millimetres alike, only directions are compared; all-zero means unknown); ``montage``
    names an mne montage whose labels are the stream's labels (e.g. 'biosemi128').
    """
    labels = [str(label) for label in labels]
    if types is not None and len(types) != len(labels):
        raise ValueError(f"Got {len(types)} channel types for {len(labels)} channel labels.")
    if use_positions not in ("auto", "always", "never"):
        raise ValueError(f"use_positions must be auto, always or never, got {use_positions!r}.")
    dropped: dict[int, str] = {}
    eeg: list[int] = []
    for i, label in enumerate(labels):
        kind = "" if types is None else str(types[i]).strip().lower()
        if kind not in _EEG_TYPES:
            dropped[i] = f"type {types[i]}"
        elif _NON_EEG_LABEL.match(normalize_label(label)):
            dropped[i] = "not EEG"
        else:
            eeg.append(i)

    source_pos = _montage_positions(montage, labels) if montage is not None else {}
    for label, pos in (positions or {}).items():
        point = np.asarray(pos, dtype=float)
        # LSL apps write 0, 0, 0 (or NaN) when they do not know a location.
        known = point.shape == (3,) and np.isfinite(point).all() and np.any(point != 0)
        if known and label in labels:
            source_pos[labels.index(label)] = point
    source_pos = {i: p for i, p in source_pos.items() if i in eeg}

    coded = sum(bool(_CODED_LABEL.match(labels[i].strip())) for i in eeg)
    if not source_pos and eeg and coded >= 0.8 * len(eeg):
        # BioSemi's "A1" is a scalp site, not the ear: labels alone would mislead here.
        raise ValueError(
            f"{coded} of {len(eeg)} EEG channels have numbered cap labels "
            f"({', '.join(labels[i] for i in eeg[:4])}, ...) and the stream gives no "
            "positions; name the cap layout with --montage (e.g. biosemi128, "
            "GSN-HydroCel-129) so channels can be matched by position."
        )
    matches: dict[int, tuple[str, str, float]] = {}
    if use_positions != "always":
        matches = _match_labels(labels, eeg, dropped)
    by_position = use_positions == "always" or (
        use_positions == "auto" and source_pos and len(matches) < len(eeg) / 2
    )
    if by_position:
        for i in matches:
            dropped.pop(i, None)
        matches = {}
    if source_pos and use_positions != "never":
        taken = {name for name, _, _ in matches.values()}
        candidates = {i: p for i, p in source_pos.items() if i not in matches}
        matches.update(_match_positions(candidates, taken, max_distance_mm, dropped))
    for i in eeg:
        if i not in matches and i not in dropped:
            dropped[i] = "no electrode" if source_pos else "unknown label"

    if not matches:
        seen = ", ".join(labels[:20]) + (" ..." if len(labels) > 20 else "")
        raise ValueError(
            f"None of the {len(labels)} stream channels maps to a NeuroRVQ electrode "
            f"(seen: {seen}). Labels must be 10-20/10-05 names (e.g. Fp1, Cz, T7); for a "
            "cap with coded labels give its layout with --montage (e.g. biosemi128) or "
            "channel positions in the stream metadata."
        )
    order = sorted(matches)
    return ChannelMapping(
        source_indices=tuple(order),
        names=tuple(matches[i][0] for i in order),
        source_labels=tuple(labels[i] for i in order),
        methods=tuple(matches[i][1] for i in order),
        distances_mm=tuple(matches[i][2] for i in order),
        dropped=tuple((labels[i], dropped[i]) for i in sorted(dropped)),
    )


def _match_labels(
    labels: Sequence[str], eeg: Sequence[int], dropped: dict[int, str]
) -> dict[int, tuple[str, str, float]]:
    known = set(ELECTRODES)
    keys = {i: normalize_label(labels[i]) for i in eeg}
    present = set(keys.values())
    matches: dict[int, tuple[str, str, float]] = {}
    used: dict[str, int] = {}
    for i in eeg:
        key = keys[i]
        modern = OLD_NAMES.get(key)
        if modern is not None and modern not in present:
            name, method = modern, "old-name"
        elif key in known:
            name, method = key, "label"
        else:
            continue
        if name in used:
            dropped[i] = f"duplicate of {labels[used[name]]}"
            continue
        used[name] = i
        matches[i] = (name, method, float("nan"))
    return matches


def _match_positions(
    candidates: Mapping[int, np.ndarray],
    taken: set[str],
    max_distance_mm: float,
    dropped: dict[int, str],
) -> dict[int, tuple[str, str, float]]:
    if not candidates:
        return {}
    targets = {n: p for n, p in _standard_positions().items() if n not in taken}
    target_names = list(targets)
    source_ids = list(candidates)
    src = _directions(np.array([candidates[i] for i in source_ids]))
    tgt = _directions(np.array([targets[n] for n in target_names]))
    distance = HEAD_RADIUS_MM * np.linalg.norm(src[:, None, :] - tgt[None, :, :], axis=2)
    # Pairs beyond the limit are made prohibitively expensive, then discarded.
    cost = np.where(distance <= max_distance_mm, distance, 1e6)
    rows, cols = linear_sum_assignment(cost)
    matches = {}
    for r, c in zip(rows, cols, strict=True):
        if distance[r, c] <= max_distance_mm:
            matches[source_ids[r]] = (target_names[c], "position", float(distance[r, c]))
    for i in source_ids:
        if i not in matches:
            dropped[i] = f"no electrode within {max_distance_mm:g} mm"
    return matches
