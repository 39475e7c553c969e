"""Scalp directions of the NeuroRVQ electrodes, to seed a fresh model's electrode embeddings."""

from __future__ import annotations

import mne
import numpy as np

from neurorvq_stream.engines import ELECTRODES


def electrode_directions() -> np.ndarray:
    """(len(ELECTRODES), 3) unit vectors (x right, y front, z up) from the head centre.

    Positions are mne's ``colin27_1005`` (the same source the live channel mapping uses);
    the centre is the mean of the known positions. Electrodes it does not place (ear
    references, a few legacy names) get zeros: their embedding starts without geometry.
    """
    montage = mne.channels.make_standard_montage("colin27_1005")
    known = {n.lower(): np.asarray(p) for n, p in montage.get_positions()["ch_pos"].items()}
    centre = np.mean(list(known.values()), axis=0)
    out = np.zeros((len(ELECTRODES), 3))
    for i, name in enumerate(ELECTRODES):
        if name in known:
            vector = known[name] - centre
            out[i] = vector / np.linalg.norm(vector)
    return out
