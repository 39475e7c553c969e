"""The one interface the live pipeline calls, whatever decoder a classifier file holds."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol, runtime_checkable

import numpy as np

from ._spec import WindowSpec

if TYPE_CHECKING:
    from ._adaptation import SessionAdapter


class DecoderError(ValueError):
    """A decoder file that cannot be used; the message names the file, the fault and the fix."""


@runtime_checkable
class Decoder(Protocol):
    """A trained, calibrated classifier of windows cut and preprocessed as ``spec`` says.

    ``scores`` holds the cross-validated balanced accuracy (``cv_mean``, ``cv_std``,
    ``cv_folds``), ``chance`` and ``n_per_class``; empty for classifiers saved without
    them. ``class_markers`` maps each class to the marker labels that belong to it.
    """

    kind: str
    class_names: tuple[str, ...]
    class_markers: dict[str, tuple[str, ...]]
    spec: WindowSpec
    scores: dict

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        """One window (len(spec.channels), spec.n_samples) in uV -> calibrated (n_classes,)."""

    def probabilities(self, x: np.ndarray) -> np.ndarray:
        """A batch of windows (n, C, T) -> (n, n_classes) (evaluation, tests)."""

    def warmup(self) -> None:
        """Run once on a zero window so the first live window is not slow."""

    def session(self, adapt: bool = False) -> SessionAdapter:
        """What classifies one live session's windows, in order: an adapter whose
        confidence follows the session (its committee, the cued trials' classes) and whose
        input is re-centred when ``adapt`` (a ``DecoderError`` where it cannot be)."""

    def describe(self) -> str:
        """One line: kind, classes, CV score and, for network heads, the backend."""


def check_window(spec: WindowSpec, x: np.ndarray) -> np.ndarray:
    """``x`` as a float batch (n, C, T) that fits ``spec``, or a ValueError saying what differs."""
    arr = np.asarray(x)
    batch = arr if arr.ndim == 3 else arr[None] if arr.ndim == 2 else None
    expected = (len(spec.channels), spec.n_samples)
    if batch is None or batch.shape[1:] != expected:
        raise ValueError(f"The decoder takes windows of {expected[0]} channels x {expected[1]} "
                         f"samples ({spec.n_patches} s at 200 Hz), got shape {arr.shape}.")
    if not np.isfinite(batch).all():
        raise ValueError("The window holds NaN/inf values; the decoder needs finite microvolts.")
    return batch.astype(np.float64, copy=False)


def describe_scores(scores: dict) -> str:
    """'CV 0.86 ± 0.03 (chance 0.50)' or 'no CV score'."""
    if "cv_mean" not in scores:
        return "no CV score"
    return (f"CV balanced accuracy {scores['cv_mean']:.2f} ± {scores.get('cv_std', 0.0):.2f} "
            f"(chance {scores.get('chance', float('nan')):.2f})")
