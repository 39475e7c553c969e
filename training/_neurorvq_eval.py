"""The shipped NeuroRVQ head in the results table: trained on sub-s01, scored on sub-s02."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from sklearn.metrics import balanced_accuracy_score

from neurorvq_stream.decoders import load_decoder

from ._decoder_set import LabelledEpochs


def shipped_head_score(path: Path | None, epochs: LabelledEpochs) -> float | None:
    """Balanced accuracy of the head in ``path`` on ``epochs`` if it decodes their classes.

    The head's own channels are picked from the epochs by name; None when there is no
    head, its classes differ, or the epochs lack one of its channels.
    """
    if path is None or not Path(path).is_file():
        return None
    decoder = load_decoder(path, backend="pytorch")
    channels = list(epochs.spec.channels)
    if decoder.class_names != epochs.class_names or not set(decoder.spec.channels) <= set(
            channels) or decoder.spec.n_samples != epochs.x.shape[2]:
        return None
    cols = [channels.index(c) for c in decoder.spec.channels]
    predicted = decoder.probabilities(epochs.x[:, cols]).argmax(axis=1)
    return float(balanced_accuracy_score(epochs.y, np.asarray(predicted)))
