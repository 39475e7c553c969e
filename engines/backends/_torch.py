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
import hashlib
import logging
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch
from torch import nn

from .._api import PreparedWindow, ieee_fp32, prepare_window
from .._format import ELECTRODES, PATCH_SAMPLES
from .._nearest import native_bf16
from ._base import InferenceEngine
from ._cache import CacheKey, EngineCache, library_versions

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


class WholeWindow(nn.Module):
    """Tokens, reconstruction and logits of one window in one function, in one fp32 vector.

    This is what the GPU path captures as one CUDA graph or compiles ahead of time: the
    search is the fp32 reference (a matmul and an argmin per level, no host round trip),
    and token ids (< 2^24) are exact in float32, so one device-to-host copy returns
    everything. ``autocast`` (bf16/fp16) applies to the decoder and the classifier only.
    """

    def __init__(
        self, tokenizer: nn.Module, classifier: nn.Module, autocast: torch.dtype | None = None
    ) -> None:
        super().__init__()
        self.tokenizer = tokenizer
        self.classifier = classifier
        self.autocast = autocast
        self.register_buffer("sq_norms", tokenizer.code_sq_norms().detach(), persistent=False)

    def forward(
        self, patches: torch.Tensor, spatial: torch.Tensor, temporal: torch.Tensor
    ) -> torch.Tensor:
        tok = self.tokenizer
        feats = tok.encode_features(patches, spatial, temporal)
        codes, quantized = tok.quantize(feats, self.sq_norms)
        reduced = (
            contextlib.nullcontext() if self.autocast is None
            else torch.autocast(patches.device.type, dtype=self.autocast)
        )
        with reduced:
            amp, sin, cos = tok.decode(quantized, spatial, temporal)
            logits = self.classifier(patches, spatial, temporal)
        mean, std = tok.amplitude_stats(patches)
        signal = tok.spectrum_to_signal(amp.float(), sin.float(), cos.float(), mean, std)
        return torch.cat((codes.flatten().float(), signal.flatten(), logits.float().flatten()))

    def unpack(
        self, packed: np.ndarray, n_channels: int, n_tokens: int
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Tokens (branches, levels, C*A), reconstruction (C, A*P), logits from a window."""
        cfg = self.tokenizer.config
        n_codes = cfg.n_branches * cfg.n_levels * n_tokens
        n_signal = n_tokens * cfg.patch_size
        tokens = packed[:n_codes].astype(np.int64).reshape(cfg.n_branches, cfg.n_levels, -1)
        signal = packed[n_codes:n_codes + n_signal].reshape(n_channels, -1)
        return tokens, signal, packed[n_codes + n_signal:]


def _weights_sha256(*modules: nn.Module) -> str:
    """Hash of the weights: a compiled window is valid for these exact numbers only."""
    digest = hashlib.sha256()
    for module in modules:
        for name, value in sorted(module.state_dict().items()):
            digest.update(name.encode())
            digest.update(value.detach().cpu().reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


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
        whole_window: bool | None = None,
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
        both = tokenizer is not None and classifier is not None
        #: One function per window (tokens + reconstruction + logits, one graph, one copy):
        #: the default on CUDA when both models are loaded; on CPU the staged path keeps the
        #: exact screened search, which has host-side steps a graph cannot hold.
        self.whole_window = (self.device.type == "cuda" and both) if whole_window is None \
            else whole_window
        if self.whole_window and not both:
            raise ValueError("whole_window=True needs both a tokenizer and a classifier.")
        self._window: WholeWindow | None = None
        self._compiled: dict[tuple, Callable] = {}

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
        if self.whole_window:
            self._window = WholeWindow(self._tok, self._clf, _AUTOCAST[self.precision])

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
            stages["search"] = (
                "fp32 matmul + argmin" if self.whole_window
                else self._search.describe().removeprefix("nearest codes: ")
            )
            stages["decoder"] = reduced
        if self.has_classifier:
            stages["classifier"] = reduced
        return stages

    def describe(self) -> str:
        extra = ", CUDA graphs" if self.cuda_graphs else ""
        if self.whole_window:
            compiled = ", AOTInductor for " + ", ".join(
                f"{k[1]} tokens" for k in self._compiled
            ) if self._compiled else ""
            extra += f", whole window in one call{compiled}"
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

    @torch.inference_mode()
    @ieee_fp32()
    def _run_window(self, w):
        if not self.whole_window:
            return None
        args = tuple(a.contiguous() for a in self._inputs(w))
        compiled = self._compiled.get(tuple(args[0].shape))
        fn = self._window if compiled is None else compiled
        stage = "window" if compiled is None else "window-compiled"
        (packed,) = self._call(stage, lambda *a: (fn(*a),), *args)
        host = packed.cpu().numpy()  # the window's one device-to-host copy
        return self._window.unpack(host, w.n_channels, w.n_channels * w.n_patches)

    def compile_window(
        self, n_channels: int, n_patches: int, cache_dir: str | Path | None = None
    ) -> Path:
        """Compile the whole-window function for one shape ahead of time, or load it.

        torch.export + AOTInductor; the package is kept in the engine cache under the
        weights' hash, the shape, the precision, the device and the library versions. Call
        it before streaming (about a minute per shape): ``run`` never compiles; a shape
        without a package runs the eager function (CUDA-graph captured on GPUs). The cache
        is the per-user engine cache unless ``cache_dir`` names another.
        """
        if not self.whole_window or self._window is None:
            raise ValueError("compile_window needs whole_window=True and load() first.")
        channels = [ELECTRODES[i % len(ELECTRODES)] for i in range(n_channels)]
        x = np.zeros((1, n_channels, n_patches * PATCH_SAMPLES), np.float32)
        example = tuple(
            a.contiguous() for a in self._inputs(prepare_window(x, channels, self.config))
        )
        device = torch.cuda.get_device_name(self.device) if self.device.type == "cuda" \
            else "cpu"
        key = CacheKey(
            name=f"aoti-window-{n_channels}x{n_patches}-{self.device.type}",
            checkpoint_sha256=_weights_sha256(self._tok, self._clf),
            precision=self.precision,
            shapes={"channels": n_channels, "patches": n_patches, "batch": 1},
            versions=library_versions({"device": device, "cuda": str(torch.version.cuda)}),
        )

        def build(folder: Path) -> dict[str, object]:
            logger.info("Compiling the whole-window function for %d x %d on %s "
                        "(AOTInductor, about a minute)...", n_channels, n_patches, device)
            t0 = time.perf_counter()
            with torch.no_grad(), ieee_fp32():
                program = torch.export.export(self._window, example)
                torch._inductor.aoti_compile_and_package(
                    program, package_path=str(folder / "window.pt2")
                )
            seconds = time.perf_counter() - t0
            logger.info("Compiled %d x %d in %.0f s.", n_channels, n_patches, seconds)
            return {"compile_seconds": round(seconds, 1)}

        folder = EngineCache(cache_dir).get_or_build(key, build)
        self._compiled[tuple(example[0].shape)] = torch._inductor.aoti_load_package(
            str(folder / "window.pt2")
        )
        return folder
