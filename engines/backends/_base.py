"""The one interface every inference backend implements, and what a window's run returns.

The streamer calls ``engine.run(x, channels)`` once per window and must not care which
library computes it; so validation, timing and the logits -> probabilities rule live here,
once, and a backend only fills in the three stages it accelerates.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from .._api import PreparedWindow, logits_to_probabilities, prepare_window
from .._config import NeuroRVQConfig
from .._format import PATCH_SAMPLES


@dataclass(frozen=True)
class EngineOutput:
    """Results of one window; a field is None when its model is absent or it was not asked for.

    ``tokens`` is int64 ``(4 branches, 8 levels, C*A)`` (channel-major), ``reconstruction``
    ``(C, A*200)`` float32 in uV, ``logits`` ``(n_out,)``, ``probabilities`` ``(n_classes,)``
    and ``timings`` seconds per stage ("tokenize", "reconstruct", "classify"), or "window"
    for backends that run the whole window as one call.
    """

    tokens: np.ndarray | None = None
    reconstruction: np.ndarray | None = None
    logits: np.ndarray | None = None
    probabilities: np.ndarray | None = None
    class_names: tuple[str, ...] = ()
    timings: dict[str, float] = field(default_factory=dict)


class InferenceEngine(ABC):
    """Load artifacts once, warm up, then run windows; either model may be absent.

    Subclasses implement the three stages on a batch of one; ``run`` validates, times and
    assembles the :class:`EngineOutput` identically for every backend.
    """

    #: Short backend name, e.g. "pytorch-cpu", "onnxruntime-cpu", "tensorrt".
    name: str = "abstract"
    #: Numeric precision of the networks, e.g. "fp32", "fp16", "bf16".
    precision: str = "fp32"

    def __init__(self) -> None:
        self.has_tokenizer = False
        self.has_classifier = False
        self.class_names: tuple[str, ...] = ()
        self.selection_reason = ""
        #: Shape configuration of a loaded model (patch size, time embeddings) for validation.
        self.config: NeuroRVQConfig | None = None

    @abstractmethod
    def load(self) -> None:
        """Read checkpoints / graphs / engines and create sessions (once, before streaming)."""

    @abstractmethod
    def _tokenize(
        self, w: PreparedWindow, reconstruct: bool
    ) -> tuple[np.ndarray, np.ndarray | None, float]:
        """Tokens (4, 8, C*A) and, when asked, the reconstruction (C, A*200) in uV.

        Returns the seconds the reconstruction (decode) part took, so the tokenize time
        excludes it.
        """

    @abstractmethod
    def _classify(self, w: PreparedWindow) -> np.ndarray:
        """Logits (n_out,) of the fine-tuned head."""

    def _run_window(
        self, w: PreparedWindow
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
        """Tokens, reconstruction and logits in one call, for backends that fuse the whole
        window (one graph, one copy back); None runs the stages one by one."""
        return None

    @abstractmethod
    def describe(self) -> str:
        """One line: backend, device, precision, loaded models and why it was chosen."""

    def _summary(self) -> str:
        """The tail every ``describe()`` shares: loaded models and why this backend runs."""
        models = [m for m, on in (("tokenizer", self.has_tokenizer),
                                  ("classifier", self.has_classifier)) if on]
        why = f" ({self.selection_reason})" if self.selection_reason else ""
        return f"models: {'+'.join(models) or 'none'}{why}"

    def warmup(self, channels: Sequence[str], n_patches: int, repeats: int = 2) -> None:
        """Run a zero window so lazy allocations, kernel selection and graph capture happen now."""
        x = np.zeros((len(channels), n_patches * PATCH_SAMPLES), dtype=np.float32)
        for _ in range(repeats):
            self.run(x, channels, reconstruct=True)

    def run(
        self, x: np.ndarray, channels: Sequence[str], reconstruct: bool = True
    ) -> EngineOutput:
        """Tokens, reconstruction and class probabilities of one window (C, A*200) in uV."""
        if self.config is None:
            raise RuntimeError(f"{self.name}: no model loaded; call load() first.")
        if not isinstance(x, np.ndarray) or x.ndim != 2:
            raise ValueError(
                f"run() takes one window, a numpy array (channels, A*{PATCH_SAMPLES}); got "
                f"{getattr(x, 'shape', type(x).__name__)}."
            )
        w = prepare_window(x[None], channels, self.config)
        timings: dict[str, float] = {}
        tokens = recon = logits = probs = None
        t0 = time.perf_counter()
        fused = (
            self._run_window(w) if self.has_tokenizer and self.has_classifier and reconstruct
            else None
        )
        if fused is not None:
            tokens, recon, logits = fused
            timings["window"] = time.perf_counter() - t0
        elif self.has_tokenizer:
            t0 = time.perf_counter()
            tokens, recon, t_decode = self._tokenize(w, reconstruct)
            timings["tokenize"] = time.perf_counter() - t0 - t_decode
            if reconstruct:
                timings["reconstruct"] = t_decode
        if self.has_classifier and fused is None:
            t0 = time.perf_counter()
            logits = self._classify(w)
            timings["classify"] = time.perf_counter() - t0
        if logits is not None:
            probs = logits_to_probabilities(logits[None])[0]
        return EngineOutput(
            tokens=tokens,
            reconstruction=recon,
            logits=logits,
            probabilities=probs,
            class_names=self.class_names,
            timings=timings,
        )
