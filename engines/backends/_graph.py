"""Engines that run the exported graphs (ONNX Runtime, TensorRT) share one window glue.

A graph runner is any callable taking and returning named arrays; the names are those the
export gives (``engines.onnx_export``), so ONNX Runtime and TensorRT runs agree by design.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence

import numpy as np

from .._api import PreparedWindow
from .._config import NeuroRVQConfig
from ._base import InferenceEngine

#: A compiled graph: named input arrays in, named output arrays out.
GraphRunner = Callable[[Mapping[str, np.ndarray]], dict[str, np.ndarray]]


class GraphEngine(InferenceEngine):
    """Runs the three exported graphs with any callable graph runner (ORT or TensorRT).

    ``graphs`` maps "tokenize", "decode", "classify" to runners taking and returning named
    arrays; the names are those of ``engines.onnx_export`` (``TOKENIZE_INPUTS`` etc.).
    """

    def __init__(
        self,
        graphs: Mapping[str, GraphRunner],
        config: NeuroRVQConfig,
        *,
        name: str,
        precision: str,
        class_names: Sequence[str] = (),
        details: str = "",
    ) -> None:
        super().__init__()
        self.graphs = dict(graphs)
        self.name = name
        self.precision = precision
        self.class_names = tuple(class_names)
        self._config = config
        self._details = details

    def load(self) -> None:
        self.has_tokenizer = "tokenize" in self.graphs
        self.has_classifier = "classify" in self.graphs
        self.config = self._config

    def describe(self) -> str:
        details = f", {self._details}" if self._details else ""
        return f"{self.name} {self.precision}{details}, {self._summary()}"

    @staticmethod
    def _feed(w: PreparedWindow) -> dict[str, np.ndarray]:
        """Graph inputs: the window (1, C, A*200) and the channels' electrode positions (C,)."""
        return {
            "x": w.patches.numpy().reshape(1, w.n_channels, -1),
            "channel_ix": np.ascontiguousarray(w.spatial_ix[0, :: w.n_patches].numpy()),
        }

    def _tokenize(self, w, reconstruct):
        feed = self._feed(w)
        enc = self.graphs["tokenize"](feed)
        tokens = enc["tokens"][:, :, 0].astype(np.int64, copy=False)
        if not reconstruct:
            return tokens, None, 0.0
        t0 = time.perf_counter()
        dec = self.graphs["decode"]({**feed, **enc})
        recon = dec["reconstruction"].reshape(w.n_channels, -1).astype(np.float32, copy=False)
        return tokens, recon, time.perf_counter() - t0

    def _classify(self, w):
        return self.graphs["classify"](self._feed(w))["logits"][0].astype(np.float32, copy=False)
