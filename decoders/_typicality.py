"""Is a window EEG at all? Windows without EEG's spatial structure are kept at the prior.

Calibration on cross-validation folds fixes over-confidence on windows like the training
ones, not on windows unlike any of them: measured on sub-s01 checker epochs, white noise
still came out at mean max-probability 0.82 to 1.00 for six of seven calibrated decoders
(a linear score far outside the training range is extreme whatever the Platt fit).

EEG channels are strongly correlated (volume conduction); noise from an amplifier with
no head on it, or synthetic noise, is not. So each window's channel correlation matrix
(OAS covariance, normalised) is compared, with pyriemann's Riemannian distance, to two
prototypes: the training windows' log-Euclidean mean, and the identity (uncorrelated
channels). The weight ``w`` that the window is EEG-like is the two-class softmax of
``-d^2/2`` (pyriemann's MDM rule), and probabilities become ``w p + (1 - w) / K``. A
distance to the training mean alone was tried first and rejected: another subject's EEG
(sub-s02) lay as far from sub-s01's mean as scaled noise did, while it stays far closer to
sub-s01's mean than to the identity. Blending with the uniform prior never changes which
class is the most probable.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.base import BaseEstimator

try:  # pyriemann >= 0.12
    from pyriemann.geometry.covariance import covariances
    from pyriemann.geometry.distance import distance_riemann
    from pyriemann.geometry.mean import mean_logeuclid
except ImportError:  # older pyriemann
    from pyriemann.utils.covariance import covariances
    from pyriemann.utils.distance import distance_riemann
    from pyriemann.utils.mean import mean_logeuclid


def correlations(x: np.ndarray) -> np.ndarray:
    """Shrunk (OAS) channel correlation matrices (n, C, C) of windows (n, C, T)."""
    c = covariances(np.asarray(x, dtype=np.float64), estimator="oas")
    sd = np.sqrt(np.maximum(np.einsum("nii->ni", c), 1e-12))
    return c / sd[:, :, None] / sd[:, None, :]


class TypicalityGate(BaseEstimator):
    """Weight in [0, 1] per window: ~1 for EEG-like windows, ~0 for spatially white ones."""

    def fit(self, x: np.ndarray) -> TypicalityGate:
        self.reference_ = mean_logeuclid(correlations(x))
        return self

    def weight(self, x: np.ndarray) -> np.ndarray:
        c = correlations(x)
        d_eeg = distance_riemann(c, self.reference_)
        d_white = distance_riemann(c, np.eye(c.shape[1]))
        # softmax([-d_eeg^2/2, -d_white^2/2])[0], written to avoid overflow
        return 1.0 / (1.0 + np.exp(np.clip((d_eeg**2 - d_white**2) / 2.0, -500, 500)))

    def shrink(self, probabilities: np.ndarray, x: np.ndarray) -> np.ndarray:
        """``probabilities`` (n, K) drawn towards 1/K as far as the windows are not EEG-like."""
        w = self.weight(x)[:, None]
        return w * probabilities + (1.0 - w) / probabilities.shape[1]

    def to_dict(self) -> dict[str, Any]:
        """JSON form (a NeuroRVQ head keeps its gate in the sidecar)."""
        return {"method": "MDM between the training windows' mean channel correlation and "
                          "the identity (pyriemann); probabilities drawn to 1/K as far as "
                          "a window is closer to the identity",
                "reference": self.reference_.tolist()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TypicalityGate:
        gate = cls()
        gate.reference_ = np.asarray(data["reference"], dtype=np.float64)
        return gate
