"""The two concrete decoders: a scikit-learn model, or a NeuroRVQ head on an inference engine."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ._adaptation import SessionAdapter
from ._calibrated import CalibratedModel, TemperatureScaling
from ._protocol import DecoderError, check_window, describe_scores
from ._session_confidence import WARMUP_WINDOWS
from ._spec import WindowSpec
from ._typicality import TypicalityGate


def default_class_markers(class_names: tuple[str, ...]) -> dict[str, tuple[str, ...]]:
    """Each class is the marker of the same name (how every head was trained before groups)."""
    return {name: (name,) for name in class_names}


@dataclass
class SklearnDecoder:
    """A calibrated scikit-learn / pyriemann / mne model of (n, C, T) epochs."""

    kind: str
    class_names: tuple[str, ...]
    spec: WindowSpec
    model: CalibratedModel
    scores: dict = field(default_factory=dict)
    class_markers: dict[str, tuple[str, ...]] = field(default_factory=dict)
    provenance: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.class_markers = self.class_markers or default_class_markers(self.class_names)

    def probabilities(self, x: np.ndarray) -> np.ndarray:
        return self.model.predict_proba(check_window(self.spec, x))

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        return self.probabilities(x)[0]

    def warmup(self) -> None:
        # Noise, not zeros: an all-flat window has no covariance (the live quality check
        # rejects such windows before they reach a decoder).
        noise = np.random.default_rng(0).normal(0.0, 10.0, (len(self.spec.channels),
                                                           self.spec.n_samples))
        self.predict_proba(noise)

    def adapter(self, warmup_windows: int = WARMUP_WINDOWS,
                recentre: bool = True) -> SessionAdapter:
        """This decoder adapted to the running session's unlabelled windows, causally
        (``_adaptation``): its confidence always, its input when ``recentre``; a new adapter
        per session."""
        return SessionAdapter(self.model, warmup_windows, self.spec, recentre)

    def session(self, adapt: bool = False) -> SessionAdapter:
        return self.adapter(recentre=adapt)

    def describe(self) -> str:
        return (f"{self.kind} decoder of {' / '.join(self.class_names)}, "
                f"{describe_scores(self.scores)}")


@dataclass(frozen=True)
class _HeadNetwork:
    """A head's network as a model of windows (n, C, T) -> calibrated probabilities (n, K):
    its calibration is folded into its logits, so a session tempers them from 1."""

    engine: Any
    channels: tuple[str, ...]

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        return np.stack([self.engine.run(w, self.channels, reconstruct=False).probabilities
                         for w in np.asarray(x, dtype=np.float32)]).astype(np.float64)


@dataclass
class HeadDecoder:
    """A fine-tuned NeuroRVQ classification head, run by an inference backend.

    Its calibration is folded into the head's last linear layer when it is trained, so
    every backend (PyTorch, ONNX Runtime, TensorRT) gives calibrated probabilities; its
    typicality gate (from the sidecar) is applied here, after the backend.
    """

    kind: str
    class_names: tuple[str, ...]
    spec: WindowSpec
    path: Path
    backend: str = "auto"
    scores: dict = field(default_factory=dict)
    class_markers: dict[str, tuple[str, ...]] = field(default_factory=dict)
    provenance: dict = field(default_factory=dict)
    gate: TypicalityGate | None = None
    engine: Any = field(default=None, repr=False)

    def __post_init__(self) -> None:
        self.class_markers = self.class_markers or default_class_markers(self.class_names)
        if self.engine is None:
            from neurorvq_stream.engines.backends import create_engine

            self.engine = create_engine(tokenizer=None, classifier=self.path,
                                        backend=self.backend)

    def probabilities(self, x: np.ndarray) -> np.ndarray:
        batch = check_window(self.spec, x)
        p = _HeadNetwork(self.engine, self.spec.channels).predict_proba(batch)
        return p if self.gate is None else self.gate.shrink(p, batch)

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        return self.probabilities(x)[0]

    def warmup(self) -> None:
        self.engine.warmup(self.spec.channels, self.spec.n_patches)

    def adapter(self, warmup_windows: int = WARMUP_WINDOWS,
                recentre: bool = True) -> SessionAdapter:
        """Its confidence tempered to the session from the cued trials' classes (it has no
        committee); re-centring is refused: a head's input layer is a network, with no
        linear step to re-centre."""
        if recentre:
            raise DecoderError(f"{self.kind} has no session adaptation (a NeuroRVQ head's "
                               "input is a network); run it without --adapt, or calibrate "
                               "a scikit-learn decoder.")
        network = CalibratedModel(_HeadNetwork(self.engine, self.spec.channels),
                                  TemperatureScaling.fixed(1.0, len(self.class_names)),
                                  self.gate)
        return SessionAdapter(network, warmup_windows, self.spec, recentre=False)

    def session(self, adapt: bool = False) -> SessionAdapter:
        return self.adapter(recentre=adapt)

    def describe(self) -> str:
        return (f"{self.kind} decoder of {' / '.join(self.class_names)}, "
                f"{describe_scores(self.scores)}, on {self.engine.describe()}")
