"""What a NeuroRVQ input is: its sampling rate, patch length and 104-electrode list.

These facts are shared by the engines, the live pipeline, the display and training; this
module imports no torch, so the lighter layers can read them cheaply.

The spatial index of a channel is its position in :data:`ELECTRODES`; it selects the row of
``pos_embed`` the channel's tokens receive, so the list order is part of the checkpoint
format and must never change (``p08`` is spelled as in the original code).
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence

import numpy as np

#: Sampling rate of every model input (Hz); the live pipeline resamples to it.
MODEL_RATE = 200.0
#: Samples per patch: one patch is one second at :data:`MODEL_RATE`.
PATCH_SAMPLES = 200

ELECTRODES: tuple[str, ...] = (
    "a1",
    "a2",
    "af3",
    "af4",
    "af7",
    "af8",
    "afz",
    "c1",
    "c2",
    "c3",
    "c4",
    "c5",
    "c6",
    "ccp1",
    "ccp2",
    "ccp3",
    "ccp4",
    "ccp5",
    "ccp6",
    "ccp7",
    "ccp8",
    "cfc1",
    "cfc2",
    "cfc3",
    "cfc4",
    "cfc5",
    "cfc6",
    "cfc7",
    "cfc8",
    "cp1",
    "cp2",
    "cp3",
    "cp4",
    "cp5",
    "cp6",
    "cpz",
    "cz",
    "eog",
    "f1",
    "f10",
    "f2",
    "f3",
    "f4",
    "f5",
    "f6",
    "f7",
    "f8",
    "f9",
    "fc1",
    "fc2",
    "fc3",
    "fc4",
    "fc5",
    "fc6",
    "fcz",
    "fp1",
    "fp2",
    "fpz",
    "ft7",
    "ft8",
    "fz",
    "iz",
    "loc",
    "o1",
    "o2",
    "oz",
    "p08",
    "p1",
    "p10",
    "p2",
    "p3",
    "p4",
    "p5",
    "p6",
    "p7",
    "p8",
    "p9",
    "po1",
    "po10",
    "po2",
    "po3",
    "po4",
    "po7",
    "po8",
    "po9",
    "poz",
    "pz",
    "roc",
    "sp1",
    "sp2",
    "t1",
    "t10",
    "t2",
    "t3",
    "t4",
    "t5",
    "t6",
    "t7",
    "t8",
    "t9",
    "tp10",
    "tp7",
    "tp8",
    "tp9",
)
_INDEX = {name: i for i, name in enumerate(ELECTRODES)}


def electrode_indices(names: Sequence[str]) -> np.ndarray:
    """Spatial indices (int64) of ``names``, matched case-insensitively, order kept.

    Unknown names raise one ``ValueError`` listing all of them with the closest known
    names, because a silently dropped channel would shift every token after it.
    """
    if isinstance(names, str):
        raise TypeError(f"channels must be a sequence of names, got the single string {names!r}.")
    keys = [str(n).strip().lower() for n in names]
    unknown = [(n, k) for n, k in zip(names, keys, strict=True) if k not in _INDEX]
    if unknown:
        hints = []
        for name, key in unknown:
            near = difflib.get_close_matches(key, ELECTRODES, n=3, cutoff=0.5)
            hints.append(f"{name!r} (nearest: {', '.join(near) if near else 'none'})")
        raise ValueError(
            f"{len(unknown)} channel name(s) are not NeuroRVQ electrodes: {'; '.join(hints)}. "
            "Rename or drop them before calling the engine (see engines.ELECTRODES)."
        )
    return np.array([_INDEX[k] for k in keys], dtype=np.int64)
