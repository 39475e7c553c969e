"""Left-right mirrored epochs: for a lateralized two-class task, each epoch mirrored is an
epoch of the other class (a left-hemifield stimulus mirrored looks like a right one).

Training on both halves of that symmetry keeps a classifier from leaning on one subject's
particular asymmetries (skull, cap placement, dominant hemisphere), which do not carry over
to another subject. Electrode names follow the 10-05 system: odd numbers on the left, even
on the right, ``z`` on the midline (``o1`` <-> ``o2``, ``ccp5`` <-> ``ccp6``, ``oz`` -> ``oz``).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np

_NAME = re.compile(r"^([a-z]+)(\d+|z)$")


def mirror_name(name: str) -> str:
    """The 10-05 electrode at the mirror position of ``name`` (itself on the midline)."""
    match = _NAME.match(name.lower())
    if match is None:
        raise ValueError(f"Electrode {name!r} has no 10-05 name (letters + number or 'z').")
    prefix, number = match.groups()
    if number == "z":
        return name.lower()
    n = int(number)
    return f"{prefix}{n + 1 if n % 2 else n - 1}"


def mirror_index(channels: Sequence[str]) -> np.ndarray:
    """Index of each channel's mirror partner in ``channels``."""
    position = {c.lower(): i for i, c in enumerate(channels)}
    missing = sorted({mirror_name(c) for c in channels} - set(position))
    if missing:
        raise ValueError(f"Mirroring needs every channel's partner; missing {missing}.")
    return np.asarray([position[mirror_name(c)] for c in channels])


def add_mirrored(
    x: np.ndarray, y: np.ndarray, channels: Sequence[str]
) -> tuple[np.ndarray, np.ndarray]:
    """Epochs (n, C, T) and 0/1 labels, followed by their mirror images with labels swapped."""
    if set(np.unique(y)) - {0, 1}:
        raise ValueError("Mirroring swaps the two classes of a left/right task: labels must "
                         "be 0 and 1.")
    return np.concatenate([x, x[:, mirror_index(channels)]]), np.concatenate([y, 1 - y])
