"""Export the three NeuroRVQ inference paths to ONNX (opset >= 17, dynamic batch/channels/patches).

Graphs (input and output names are part of the contract with ``engines.backends``):

- tokenize: ``x`` (B, C, A*200) float32 uV, ``channel_ix`` (C,) int64 (positions in
  :data:`engines.ELECTRODES`) -> ``tokens`` (branches, levels, B, C*A) int64, ``quantized``
  (branches, B, C*A, code_dim), ``amplitude_mean`` (B,), ``amplitude_std`` (B,).
- decode: ``quantized``, ``channel_ix``, ``amplitude_mean``, ``amplitude_std`` ->
  ``reconstruction`` (B, C, A*200) uV.
- classify: ``x``, ``channel_ix`` -> ``logits`` (B, n_out).

Token spatial/temporal indices are built inside the graphs from ``channel_ix`` and the
window length (right-aligned time index), so callers pass only data and channel positions.
The DFT is a fixed matmul and each RVQ level a Gemm + ArgMin: the graphs hold no FFT,
one-hot or loop operators, which keeps them TensorRT-friendly.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import onnx
import torch
from torch import nn

from ._api import Classifier, Tokenizer
from ._foundation import NeuroRVQFoundationModel
from ._tokenizer import NeuroRVQTokenizer

TOKENIZE_INPUTS = ("x", "channel_ix")
TOKENIZE_OUTPUTS = ("tokens", "quantized", "amplitude_mean", "amplitude_std")
DECODE_INPUTS = ("quantized", "channel_ix", "amplitude_mean", "amplitude_std")
DECODE_OUTPUTS = ("reconstruction",)
CLASSIFY_INPUTS = ("x", "channel_ix")
CLASSIFY_OUTPUTS = ("logits",)
FORBIDDEN_OPS = frozenset({"DFT", "STFT", "OneHot", "Loop", "Scan", "If"})


def _token_indices(
    channel_ix: torch.Tensor, n_patches: torch.Tensor | int, n_times: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """(1, C*A) spatial and right-aligned temporal indices, channel-major, traceable."""
    times = torch.arange(n_patches, device=channel_ix.device) + (n_times - n_patches)
    grid_c, grid_t = torch.meshgrid(channel_ix, times, indexing="ij")
    return grid_c.reshape(1, -1), grid_t.reshape(1, -1)


class _WindowGraph(nn.Module):
    """A graph whose inputs are a window ``x`` (B, C, A*200) and its channel indices."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def _patches(self, x: torch.Tensor, channel_ix: torch.Tensor):
        """Patches (B, C*A, 200) and their spatial and temporal token indices."""
        cfg = self.model.config
        patches = x.reshape(x.shape[0], -1, cfg.patch_size)
        s, t = _token_indices(channel_ix, x.shape[-1] // cfg.patch_size, cfg.n_times)
        return patches, s, t


class _TokenizeGraph(_WindowGraph):
    def forward(self, x: torch.Tensor, channel_ix: torch.Tensor):
        patches, s, t = self._patches(x, channel_ix)
        codes, quantized = self.model.quantize(self.model.encode_features(patches, s, t))
        mean, std = self.model.amplitude_stats(patches)
        return codes, quantized, mean.reshape(-1), std.reshape(-1)


class _DecodeGraph(nn.Module):
    def __init__(self, model: NeuroRVQTokenizer) -> None:
        super().__init__()
        self.model = model

    def forward(self, quantized, channel_ix, amplitude_mean, amplitude_std):
        cfg = self.model.config
        b = quantized.shape[1]
        s, t = _token_indices(channel_ix, quantized.shape[2] // channel_ix.shape[0], cfg.n_times)
        amp, sin, cos = self.model.decode(quantized, s, t)
        stats = (amplitude_mean.reshape(-1, 1, 1), amplitude_std.reshape(-1, 1, 1))
        signal = self.model.spectrum_to_signal(amp, sin, cos, *stats)
        return signal.reshape(b, channel_ix.shape[0], -1)


class _ClassifyGraph(_WindowGraph):
    def forward(self, x: torch.Tensor, channel_ix: torch.Tensor):
        return self.model(*self._patches(x, channel_ix))


def _export(
    graph: nn.Module,
    args: tuple[torch.Tensor, ...],
    path: str | Path,
    inputs: tuple[str, ...],
    outputs: tuple[str, ...],
    dynamic: dict[str, dict[int, str]],
    opset: int,
) -> Path:
    if opset < 17:
        raise ValueError(f"opset {opset} is too old: LayerNorm needs opset >= 17.")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    graph = graph.eval()
    # The trace is exact for every input shape (branch and level counts are fixed by the
    # config, all shape arithmetic is traced); silence the tracer's generic warnings and the
    # deprecation note of the TorchScript exporter, which is still the TensorRT-friendly one.
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(
            graph,
            args,
            str(path),
            input_names=list(inputs),
            output_names=list(outputs),
            dynamic_axes=dynamic,
            opset_version=opset,
            do_constant_folding=True,
            dynamo=False,
        )
    model = onnx.load(str(path))
    onnx.checker.check_model(model)
    found = FORBIDDEN_OPS.intersection(node.op_type for node in model.graph.node)
    if found:
        raise RuntimeError(f"Exported graph {str(path)!r} contains {sorted(found)} operators.")
    return path


def _example(module: nn.Module, channels: int = 3, patches: int = 2) -> torch.Tensor:
    device = next(module.parameters()).device
    return torch.randn(1, channels, patches * module.config.patch_size, device=device) * 20


def _channel_ix(module: nn.Module, channels: int = 3) -> torch.Tensor:
    return torch.arange(channels, device=next(module.parameters()).device) * 5


_X_AXES = {0: "batch", 1: "channels", 2: "samples"}


def export_tokenizer(tok: Tokenizer | NeuroRVQTokenizer, path: str | Path, opset: int = 17) -> Path:
    """Write the tokenize graph (tokens, quantized vectors, amplitude statistics)."""
    model = tok.module if isinstance(tok, Tokenizer) else tok
    dynamic = {
        "x": _X_AXES,
        "channel_ix": {0: "channels"},
        "tokens": {2: "batch", 3: "tokens"},
        "quantized": {1: "batch", 2: "tokens"},
        "amplitude_mean": {0: "batch"},
        "amplitude_std": {0: "batch"},
    }
    args = (_example(model), _channel_ix(model))
    return _export(
        _TokenizeGraph(model), args, path, TOKENIZE_INPUTS, TOKENIZE_OUTPUTS, dynamic, opset
    )


def export_decoder(tok: Tokenizer | NeuroRVQTokenizer, path: str | Path, opset: int = 17) -> Path:
    """Write the decode graph (quantized vectors + amplitude statistics -> microvolts)."""
    model = tok.module if isinstance(tok, Tokenizer) else tok
    cfg = model.config
    device = next(model.parameters()).device
    args = (
        torch.randn(cfg.n_branches, 1, 6, cfg.code_dim, device=device),
        _channel_ix(model),
        torch.full((1,), 1.5, device=device),
        torch.full((1,), 0.8, device=device),
    )
    dynamic = {
        "quantized": {1: "batch", 2: "tokens"},
        "channel_ix": {0: "channels"},
        "amplitude_mean": {0: "batch"},
        "amplitude_std": {0: "batch"},
        "reconstruction": _X_AXES,
    }
    return _export(_DecodeGraph(model), args, path, DECODE_INPUTS, DECODE_OUTPUTS, dynamic, opset)


def export_classifier(
    clf: Classifier | NeuroRVQFoundationModel, path: str | Path, opset: int = 17
) -> Path:
    """Write the classify graph (window -> logits of the fine-tuned head)."""
    model = clf.module if isinstance(clf, Classifier) else clf
    if model.config.n_out <= 0:
        raise ValueError("This foundation model has no classification head to export.")
    dynamic = {"x": _X_AXES, "channel_ix": {0: "channels"}, "logits": {0: "batch"}}
    args = (_example(model), _channel_ix(model))
    return _export(
        _ClassifyGraph(model), args, path, CLASSIFY_INPUTS, CLASSIFY_OUTPUTS, dynamic, opset
    )
