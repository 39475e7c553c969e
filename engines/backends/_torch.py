"""PyTorch backend: the reference networks, on CPU or CUDA.

On CUDA the transformer parts may run under bf16/fp16 autocast while the residual
quantization stays in float32 (an argmin between near-equal distances must not flip with
the precision), and each (channels, patches) shape can be captured once as a CUDA graph
so a window costs one replay instead of hundreds of kernel launches.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Sequence

import torch

from .._api import PreparedWindow
from ._base import InferenceEngine

logger = logging.getLogger(__name__)

_AUTOCAST = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}


class _Graphed:
    """A function of fixed-shape tensors captured as a CUDA graph; inputs copied in place."""

    def __init__(self, fn: Callable[..., tuple[torch.Tensor, ...]], *example: torch.Tensor):
        self.inputs = [t.clone() for t in example]
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            for _ in range(2):  # settle allocator and library workspaces before capture
                fn(*self.inputs)
        torch.cuda.current_stream().wait_stream(side)
        self.graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(self.graph):
            self.outputs = fn(*self.inputs)

    def __call__(self, *args: torch.Tensor) -> tuple[torch.Tensor, ...]:
        for dst, src in zip(self.inputs, args, strict=True):
            dst.copy_(src, non_blocking=True)
        self.graph.replay()
        return self.outputs


class TorchEngine(InferenceEngine):
    """Runs the PyTorch NeuroRVQ modules; ``tokenizer``/``classifier`` are loaded models."""

    def __init__(
        self,
        tokenizer: torch.nn.Module | None,
        classifier: torch.nn.Module | None,
        *,
        device: str = "cpu",
        precision: str = "fp32",
        cuda_graphs: bool | None = None,
        class_names: Sequence[str] = (),
    ) -> None:
        super().__init__()
        if precision not in _AUTOCAST:
            raise ValueError(f"precision must be one of {sorted(_AUTOCAST)}, got {precision!r}.")
        self.device = torch.device(device)
        if self.device.type == "cuda" and not torch.cuda.is_available():
            raise RuntimeError(f"device={device!r} was asked for but PyTorch sees no CUDA GPU.")
        if self.device.type != "cuda" and precision != "fp32":
            raise ValueError(
                f"precision={precision!r} is for CUDA; on {self.device.type} use fp32 "
                "(CPU autocast is slower than fp32 for these shapes)."
            )
        self.precision = precision
        self.cuda_graphs = self.device.type == "cuda" if cuda_graphs is None else cuda_graphs
        if self.cuda_graphs and self.device.type != "cuda":
            raise ValueError("cuda_graphs=True needs device='cuda'.")
        self._tok = tokenizer
        self._clf = classifier
        self.class_names = tuple(class_names)
        self._graphs: dict[tuple, _Graphed] = {}
        self.name = f"pytorch-{self.device.type}"

    def load(self) -> None:
        for model in (self._tok, self._clf):
            if model is not None:
                model.to(self.device).eval().requires_grad_(False)
        self.has_tokenizer = self._tok is not None
        self.has_classifier = self._clf is not None
        self.config = (self._tok if self._tok is not None else self._clf).config

    def describe(self) -> str:
        extra = ", CUDA graphs" if self.cuda_graphs else ""
        return (f"{self.name} {self.precision}{extra}, torch {torch.__version__}, "
                f"{self._summary()}")

    def _autocast(self) -> contextlib.AbstractContextManager:
        dtype = _AUTOCAST[self.precision]
        if dtype is None:
            return contextlib.nullcontext()
        return torch.autocast("cuda", dtype=dtype)

    def _inputs(self, w: PreparedWindow) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        dev = self.device
        return w.patches.to(dev), w.spatial_ix.to(dev), w.time_ix.to(dev)

    # Stage functions on tensors; these are what CUDA graphs capture.
    def _encode(self, patches, spatial, temporal):
        with self._autocast():
            feats = self._tok.encode_features(patches, spatial, temporal)
        codes, quantized = self._tok.quantize(feats.float())
        return codes, quantized

    def _decode(self, quantized, patches, spatial, temporal):
        with self._autocast():
            amp, sin, cos = self._tok.decode(quantized, spatial, temporal)
        mean, std = self._tok.amplitude_stats(patches)
        return (self._tok.spectrum_to_signal(amp.float(), sin.float(), cos.float(), mean, std),)

    def _logits(self, patches, spatial, temporal):
        with self._autocast():
            return (self._clf(patches, spatial, temporal).float(),)

    def _call(self, stage: str, fn: Callable, *args: torch.Tensor) -> tuple[torch.Tensor, ...]:
        if not self.cuda_graphs:
            return fn(*args)
        key = (stage, *(tuple(a.shape) for a in args))
        graphed = self._graphs.get(key)
        if graphed is None:
            logger.info("Capturing a CUDA graph for %s at %s.", stage, key[1:])
            graphed = self._graphs[key] = _Graphed(fn, *args)
        return graphed(*args)

    @torch.inference_mode()
    def _tokenize(self, w, reconstruct):
        patches, spatial, temporal = self._inputs(w)
        codes, quantized = self._call("encode", self._encode, patches, spatial, temporal)
        tokens = codes[:, :, 0].cpu().numpy()
        if not reconstruct:
            return tokens, None, 0.0
        t0 = time.perf_counter()
        (signal,) = self._call("decode", self._decode, quantized, patches, spatial, temporal)
        recon = signal.reshape(w.n_channels, -1).cpu().numpy()
        return tokens, recon, time.perf_counter() - t0

    @torch.inference_mode()
    def _classify(self, w):
        (logits,) = self._call("classify", self._logits, *self._inputs(w))
        return logits[0].cpu().numpy()
