"""Feature steps of the decoders, as scikit-learn transformers on (n, C, T) uV epochs at 200 Hz.

Only what the libraries do not provide lives here: cutting an epoch's time course into
bins, band-passing epochs for a filter bank (``scipy.signal``), and the frozen NeuroRVQ
foundation model as a feature extractor. Covariances, xDAWN, CSP and tangent space come
from pyriemann and mne.
"""

from __future__ import annotations

import hashlib
from typing import Any

import numpy as np
from scipy import signal
from sklearn.base import BaseEstimator, TransformerMixin

RATE = 200.0  # the model rate every window arrives at (engines.MODEL_RATE)


class EpochAmplitudes(TransformerMixin, BaseEstimator):
    """The epoch's time course as a vector: common average, baseline, ``bin_s`` bin means.

    Means over bins are a boxcar low-pass, so ``bin_s`` sets the slowest feature time
    scale: 0.05 s keeps an evoked response's peaks, 0.2 s keeps only slow shifts.
    ``baseline_s`` > 0 subtracts each channel's mean over the window's first seconds, so
    that a DC offset (no high-pass) does not swamp a slow potential.
    """

    def __init__(self, bin_s: float = 0.05, baseline_s: float = 0.0,
                 average_reference: bool = True) -> None:
        self.bin_s = bin_s
        self.baseline_s = baseline_s
        self.average_reference = average_reference

    def fit(self, x: np.ndarray, y: np.ndarray | None = None) -> EpochAmplitudes:
        return self

    def transform(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=np.float64)
        if self.average_reference:
            x = x - x.mean(axis=1, keepdims=True)
        if self.baseline_s > 0:
            x = x - x[:, :, : max(1, round(self.baseline_s * RATE))].mean(axis=2, keepdims=True)
        step = max(1, round(self.bin_s * RATE))
        n = x.shape[2] // step * step
        return x[:, :, :n].reshape(*x.shape[:2], -1, step).mean(axis=3).reshape(len(x), -1)


class BandPass(TransformerMixin, BaseEstimator):
    """Zero-phase Butterworth band-pass of each epoch (one band of a filter bank)."""

    def __init__(self, l_freq: float = 8.0, h_freq: float = 30.0, order: int = 4) -> None:
        self.l_freq = l_freq
        self.h_freq = h_freq
        self.order = order

    def fit(self, x: np.ndarray, y: np.ndarray | None = None) -> BandPass:
        return self

    def transform(self, x: np.ndarray) -> np.ndarray:
        sos = signal.butter(self.order, (self.l_freq, self.h_freq), btype="bandpass",
                            fs=RATE, output="sos")
        return signal.sosfiltfilt(sos, np.asarray(x, dtype=np.float64), axis=-1)


class FoundationFeatures(TransformerMixin, BaseEstimator):
    """Pooled features of a frozen NeuroRVQ foundation model: (n, branches * D).

    Holds the model's weights as plain arrays (``state``) and its configuration, so the
    decoder file stays free of pickled code; the network is rebuilt on first use. Nothing
    is trained (``fit`` does nothing), so features of an epoch are computed once and kept
    (by content) while the object lives: cross-validation folds share them.
    """

    def __init__(self, state: dict[str, np.ndarray] | None = None,
                 config: dict[str, Any] | None = None, channels: tuple[str, ...] = (),
                 batch_size: int = 32) -> None:
        self.state = state
        self.config = config
        self.channels = channels
        self.batch_size = batch_size

    @classmethod
    def from_checkpoint(cls, path: str, channels: tuple[str, ...]) -> FoundationFeatures:
        """Weights of a foundation-model checkpoint (either form; heads are not used)."""
        from neurorvq_stream.engines._checkpoint import build_foundation_model

        model = build_foundation_model(path, pretraining_heads=False)
        state = {k: v.detach().cpu().numpy() for k, v in model.state_dict().items()
                 if not k.startswith(("fc_norm.", "head."))}
        config = {**model.config.to_dict(), "n_out": 0}
        return cls(state=state, config=config, channels=tuple(channels))

    def fit(self, x: np.ndarray, y: np.ndarray | None = None) -> FoundationFeatures:
        return self

    def transform(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=np.float32)
        cache = self.__dict__.setdefault("_cache", {})
        keys = [hashlib.blake2b(np.ascontiguousarray(epoch).tobytes(), digest_size=16).digest()
                for epoch in x]
        todo = [i for i, key in enumerate(keys) if key not in cache]
        for start in range(0, len(todo), self.batch_size):
            rows = todo[start : start + self.batch_size]
            for i, feature in zip(rows, self._features(x[rows]), strict=True):
                cache[keys[i]] = feature
        return np.stack([cache[key] for key in keys]).astype(np.float64)

    def _features(self, x: np.ndarray) -> np.ndarray:
        import torch

        from neurorvq_stream.engines._api import prepare_window

        module = self._module()
        w = prepare_window(x, self.channels, module.config)
        with torch.inference_mode():
            return module.pooled_features(w.patches, w.spatial_ix, w.time_ix).numpy()

    def _module(self) -> Any:
        module = self.__dict__.get("_network")
        if module is None:
            import torch

            from neurorvq_stream.engines import NeuroRVQConfig
            from neurorvq_stream.engines._foundation import NeuroRVQFoundationModel

            config = {k: tuple(v) if isinstance(v, list) else v for k, v in self.config.items()}
            module = NeuroRVQFoundationModel(NeuroRVQConfig(**config))
            module.load_state_dict({k: torch.from_numpy(np.asarray(v))
                                    for k, v in self.state.items()}, strict=True)
            self.__dict__["_network"] = module.eval()
        return module

    def __getstate__(self) -> dict[str, Any]:
        """What a decoder file stores: weights and settings, not the network or the cache."""
        return {k: v for k, v in self.__dict__.items() if k not in ("_cache", "_network")}
