"""PyTorch backend: the reference networks, on CPU or CUDA.

The token path (encoder + nearest-code search) is always fp32: IEEE fp32 on every device
(TF32 switched off around the engine's calls, the caller's settings restored after), and
on CPU the exact screened search of ``engines._nearest``. ``precision="bf16"`` (or
"fp16" on CUDA) runs the decoder and the classifier under autocast: tokens stay identical,
the reconstruction and the logits move by the amounts ``benchmarks/bench_backends.py``
prints. Encoder autocast was measured at 89 % token agreement on CPU (93-95 % on an
H100), so it is not offered. On CUDA each (channels, patches) shape can be captured once
as a CUDA graph so a window costs one replay instead of hundreds of kernel launches.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Sequence

import torch

from engines import PreparedWindow
from engines._api import ieee_fp32
from engines._nearest import native_bf16

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
        screen: str = "auto",
    ) -> None:
        super().__init__()
        if precision not in _AUTOCAST:
            raise ValueError(f"precision must be one of {sorted(_AUTOCAST)}, got {precision!r}.")
        self.device = torch.device(device)
        if self.device.type == "cuda" and not torch.cuda.is_available():
            raise RuntimeError(f"device={device!r} was asked for but PyTorch sees no CUDA GPU.")
        if self.device.type != "cuda" and precision == "fp16":
            raise ValueError(
                f"precision='fp16' is for CUDA; on {self.device.type} use fp32, or bf16 for "
                "the decoder and classifier."
            )
        if self.device.type == "cpu" and precision == "bf16" and not native_bf16():
            logger.warning(
                "precision='bf16' on a CPU without bf16 instructions (AVX512-BF16/AMX): "
                "PyTorch emulates it, much slower than fp32."
            )
        self.precision = precision
        self.screen = screen
        self._search = None
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
        if self._tok is not None:
            with torch.inference_mode():
                self._search = self._tok.code_search(self.screen)

    @property
    def search_stats(self):
        """Counters of the exact nearest-code search (None without a tokenizer)."""
        return None if self._search is None else self._search.stats

    def stage_precisions(self) -> dict[str, str]:
        """What each stage computes in: the token path is exact fp32 in every mode."""
        fp32 = "fp32 (IEEE, TF32 off)" if self.device.type == "cuda" else "fp32"
        reduced = fp32 if self.precision == "fp32" else f"{self.precision} autocast"
        stages = {}
        if self.has_tokenizer:
            stages["encoder"] = fp32
            stages["search"] = self._search.describe().removeprefix("nearest codes: ")
            stages["decoder"] = reduced
        if self.has_classifier:
            stages["classifier"] = reduced
        return stages

    def describe(self) -> str:
        extra = ", CUDA graphs" if self.cuda_graphs else ""
        stages = "; ".join(f"{k}: {v}" for k, v in self.stage_precisions().items())
        return (f"{self.name} {self.precision}{extra}, torch {torch.__version__}, "
                f"{torch.get_num_threads()} thread(s) [{stages}], {self._summary()}")

    def _autocast(self) -> contextlib.AbstractContextManager:
        dtype = _AUTOCAST[self.precision]
        if dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=dtype)

    def _inputs(self, w: PreparedWindow) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        dev = self.device
        return w.patches.to(dev), w.spatial_ix.to(dev), w.time_ix.to(dev)

    # Stage functions on tensors; these are what CUDA graphs capture.
    def _encode(self, patches, spatial, temporal):
        return self._search.quantize(self._tok.encode_features(patches, spatial, temporal))

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
    @ieee_fp32()
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
    @ieee_fp32()
    def _classify(self, w):
        (logits,) = self._call("classify", self._logits, *self._inputs(w))
        return logits[0].cpu().numpy()
