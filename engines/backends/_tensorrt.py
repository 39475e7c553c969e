"""TensorRT: build engines from the exported ONNX graphs and run them on a CUDA stream.

TensorRT is imported lazily (it is absent on CPU machines and cannot be installed here);
the code is written against the TensorRT 10 and 11 Python APIs, which share the
name-based tensor API (``set_input_shape``, ``set_tensor_address``, ``execute_async_v3``).
TensorRT 11 networks are always strongly typed, so half precision there comes from an
fp16 ONNX graph instead of the ``BuilderFlag.FP16`` of TensorRT 10.
"""

from __future__ import annotations

import importlib.util
import json
import logging
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from .._config import NeuroRVQConfig
from ._cache import CacheKey, EngineCache, file_sha256, library_versions
from ._export import GRAPH_FILES, export_class_names, export_graphs
from ._graph import GraphEngine

logger = logging.getLogger(__name__)

Profile = Mapping[str, tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]]]


def tensorrt_unavailable_reason() -> str | None:
    """None when TensorRT and a CUDA GPU are both usable, else what is missing."""
    if importlib.util.find_spec("tensorrt") is None:
        return "the 'tensorrt' Python package is not installed (it comes from NVIDIA's index)"
    import torch

    if not torch.cuda.is_available():
        return "no CUDA GPU is visible to PyTorch (TensorRT needs an NVIDIA GPU)"
    return None


def _require_tensorrt():  # -> module; untyped because the package may not exist
    reason = tensorrt_unavailable_reason()
    if reason is not None:
        raise RuntimeError(f"TensorRT cannot run here: {reason}.")
    import tensorrt as trt

    return trt


def tensorrt_major() -> int:
    trt = _require_tensorrt()
    return int(trt.__version__.split(".")[0])


def tensorrt_versions() -> dict[str, str]:
    """TensorRT, CUDA and GPU identity: an engine is only valid on the same triple."""
    trt = _require_tensorrt()
    import torch

    props = torch.cuda.get_device_properties(torch.cuda.current_device())
    return {
        "tensorrt": trt.__version__,
        "cuda": str(torch.version.cuda),
        "gpu": props.name,
        "compute_capability": f"{props.major}.{props.minor}",
    }


def _progress_monitor(trt):  # -> trt.IProgressMonitor
    """tqdm bars for the builder's phases, so a minutes-long build shows it is alive."""
    from tqdm import tqdm

    class _Monitor(trt.IProgressMonitor):
        def __init__(self) -> None:
            trt.IProgressMonitor.__init__(self)
            self._bars: dict[str, tqdm] = {}

        def phase_start(self, phase_name: str, parent_phase: str | None, num_steps: int) -> None:
            self._bars[phase_name] = tqdm(total=num_steps, desc=phase_name, leave=False)

        def step_complete(self, phase_name: str, step: int) -> bool:
            bar = self._bars.get(phase_name)
            if bar is not None:
                bar.update(step + 1 - bar.n)
            return True  # False would cancel the build

        def phase_finish(self, phase_name: str) -> None:
            bar = self._bars.pop(phase_name, None)
            if bar is not None:
                bar.close()

    return _Monitor()


def build_tensorrt_engine(
    onnx_path: str | Path,
    engine_path: str | Path,
    profile: Profile,
    *,
    fp16: bool = False,
    workspace_bytes: int = 2 << 30,
    timing_cache: str | Path | None = None,
) -> dict[str, object]:
    """Parse ``onnx_path`` and write a serialized engine; returns metadata for the cache.

    ``profile`` maps every dynamic input to its (min, opt, max) shape. On TensorRT 10,
    ``fp16`` sets the FP16 builder flag on an fp32 graph; on TensorRT 11 the network is
    strongly typed and ``onnx_path`` must already be the fp16 export.
    """
    trt = _require_tensorrt()
    major = tensorrt_major()
    log = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(log)
    network = builder.create_network(0)  # explicit batch is the only mode in 10 and 11
    parser = trt.OnnxParser(network, log)
    if not parser.parse_from_file(str(onnx_path)):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise RuntimeError(f"TensorRT could not parse {onnx_path}: {errors}")
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, int(workspace_bytes))
    if fp16 and major < 11:
        config.set_flag(trt.BuilderFlag.FP16)
    if hasattr(trt, "IProgressMonitor"):
        config.progress_monitor = _progress_monitor(trt)
    opt_profile = builder.create_optimization_profile()
    for i in range(network.num_inputs):
        tensor = network.get_input(i)
        if tensor.name not in profile:
            if any(d < 0 for d in tensor.shape):
                raise ValueError(
                    f"Input '{tensor.name}' has dynamic shape {tuple(tensor.shape)} but no "
                    f"optimization profile; profiles were given for {sorted(profile)}."
                )
            continue
        lo, opt, hi = profile[tensor.name]
        opt_profile.set_shape(tensor.name, lo, opt, hi)
    config.add_optimization_profile(opt_profile)
    cache_bytes = b""
    if timing_cache is not None and Path(timing_cache).is_file():
        cache_bytes = Path(timing_cache).read_bytes()
    cache = config.create_timing_cache(cache_bytes)
    config.set_timing_cache(cache, ignore_mismatch=False)
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise RuntimeError(f"TensorRT failed to build an engine from {onnx_path}; see its log.")
    Path(engine_path).write_bytes(bytes(serialized))
    if timing_cache is not None:
        Path(timing_cache).write_bytes(bytes(config.get_timing_cache().serialize()))
    return {
        **tensorrt_versions(),
        "fp16": fp16,
        "strongly_typed": major >= 11,
        "profile": {k: [list(s) for s in v] for k, v in profile.items()},
    }


class TensorRTGraph:
    """One deserialized engine with device and pinned host buffers sized for its profile max.

    Called like the ONNX Runtime graph: ``graph({name: array}) -> {name: array}``; buffers are
    allocated once, so a window costs only copies, ``set_input_shape`` and one launch.
    """

    def __init__(self, engine_path: str | Path, device: int = 0) -> None:
        trt = _require_tensorrt()
        import torch

        self._torch = torch
        self.device = torch.device("cuda", device)
        runtime = trt.Runtime(trt.Logger(trt.Logger.WARNING))
        self.engine = runtime.deserialize_cuda_engine(Path(engine_path).read_bytes())
        if self.engine is None:
            raise RuntimeError(
                f"TensorRT could not deserialize {engine_path}; it was probably built with "
                "another TensorRT version or GPU. Rebuild it with build_engine.py."
            )
        self.context = self.engine.create_execution_context()
        self.stream = torch.cuda.Stream(self.device)
        names = [self.engine.get_tensor_name(i) for i in range(self.engine.num_io_tensors)]
        is_input = {n: self.engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT for n in names}
        self.input_names = [n for n in names if is_input[n]]
        self.output_names = [n for n in names if not is_input[n]]
        for name in self.input_names:
            self.context.set_input_shape(name, self.engine.get_tensor_profile_shape(name, 0)[2])
        self._device: dict[str, torch.Tensor] = {}
        self._host: dict[str, torch.Tensor] = {}
        for name in names:
            shape = tuple(self.context.get_tensor_shape(name))
            dtype = torch.from_numpy(
                np.empty(0, dtype=trt.nptype(self.engine.get_tensor_dtype(name)))
            ).dtype
            numel = int(np.prod(shape)) if shape else 1
            self._device[name] = torch.empty(numel, dtype=dtype, device=self.device)
            self._host[name] = torch.empty(numel, dtype=dtype, pin_memory=True)
            self.context.set_tensor_address(name, self._device[name].data_ptr())

    def __call__(self, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        torch = self._torch
        missing = set(self.input_names) - set(inputs)
        if missing:
            raise ValueError(
                f"Missing engine inputs {sorted(missing)}; it takes {self.input_names}."
            )
        with torch.cuda.stream(self.stream):
            for name in self.input_names:
                arr = np.ascontiguousarray(inputs[name])
                src = torch.from_numpy(arr).reshape(-1)
                host = self._host[name][: src.numel()]
                host.copy_(src)
                self._device[name][: src.numel()].copy_(host, non_blocking=True)
                if not self.context.set_input_shape(name, arr.shape):
                    raise ValueError(
                        f"Shape {arr.shape} of '{name}' is outside the engine's profile "
                        f"{self.engine.get_tensor_profile_shape(name, 0)}; rebuild with wider "
                        "--min/--max shapes."
                    )
            shapes = {n: tuple(self.context.get_tensor_shape(n)) for n in self.output_names}
            if not self.context.execute_async_v3(self.stream.cuda_stream):
                raise RuntimeError("TensorRT execute_async_v3 failed; see the TensorRT log.")
            for name, shape in shapes.items():
                numel = int(np.prod(shape))
                self._host[name][:numel].copy_(self._device[name][:numel], non_blocking=True)
        self.stream.synchronize()
        return {
            n: self._host[n][: int(np.prod(s))].numpy().reshape(s).copy()
            for n, s in shapes.items()
        }


DEFAULT_CHANNELS = (1, 64, 128)
DEFAULT_PATCHES = (1, 4, 16)


def graph_profile(
    stage: str,
    config: NeuroRVQConfig,
    channels: tuple[int, int, int] = DEFAULT_CHANNELS,
    patches: tuple[int, int, int] = DEFAULT_PATCHES,
) -> dict[str, tuple[tuple[int, ...], ...]]:
    """(min, opt, max) shapes of every input of one exported graph, batch 1 (streaming).

    The three ``channels``/``patches`` values are min, opt, max; the builder tunes for opt.
    """
    for what, values in (("channels", channels), ("patches", patches)):
        if len(values) != 3 or not (1 <= values[0] <= values[1] <= values[2]):
            raise ValueError(f"{what} profile must be min <= opt <= max, all >= 1; got {values}.")
    if patches[2] > config.n_times:
        raise ValueError(f"patches max {patches[2]} exceeds the model's {config.n_times}.")
    p = config.patch_size
    triple = range(3)
    if stage in ("tokenize", "classify"):
        return {
            "x": tuple((1, channels[i], patches[i] * p) for i in triple),
            "channel_ix": tuple((channels[i],) for i in triple),
        }
    if stage == "decode":
        return {
            "quantized": tuple(
                (config.n_branches, 1, channels[i] * patches[i], config.code_dim) for i in triple
            ),
            "channel_ix": tuple((channels[i],) for i in triple),
            "amplitude_mean": ((1,), (1,), (1,)),
            "amplitude_std": ((1,), (1,), (1,)),
        }
    raise ValueError(f"Unknown graph {stage!r}; expected one of {sorted(GRAPH_FILES)}.")


def compile_engines(
    cache: EngineCache,
    tokenizer: Path | None,
    classifier: Path | None,
    *,
    precision: str = "fp32",
    channels: tuple[int, int, int] = DEFAULT_CHANNELS,
    patches: tuple[int, int, int] = DEFAULT_PATCHES,
    workspace_bytes: int = 2 << 30,
) -> tuple[dict[str, Path], NeuroRVQConfig, tuple[str, ...]]:
    """Engine file per graph ("tokenize", "decode", "classify"), config and class names.

    Each engine is built or taken from the cache.
    The timing cache lives beside the entries (``timing.cache``) so rebuilds after a version
    bump or a profile change reuse earlier kernel measurements.
    """
    if precision not in ("fp32", "fp16"):
        raise ValueError(f"TensorRT precision must be 'fp32' or 'fp16', got {precision!r}.")
    fp16 = precision == "fp16"
    # TensorRT 11 is strongly typed: fp16 must come from the graph; 10 uses the builder flag.
    onnx_precision = "fp16" if fp16 and tensorrt_major() >= 11 else "fp32"
    folders, config = export_graphs(cache, tokenizer, classifier, onnx_precision)
    versions = tensorrt_versions()
    engines: dict[str, Path] = {}
    for folder in folders:
        for stage, fname in GRAPH_FILES.items():
            onnx_path = folder / fname
            if not onnx_path.is_file():
                continue
            profile = graph_profile(stage, config, channels, patches)
            key = CacheKey(
                name=f"trt-{stage}",
                checkpoint_sha256=file_sha256(onnx_path),
                precision=precision,
                # The workspace bounds which kernels the builder may choose.
                shapes={**{k: [list(s) for s in v] for k, v in profile.items()},
                        "workspace_bytes": workspace_bytes},
                versions=library_versions(versions),
            )

            def build(out: Path, onnx_path: Path = onnx_path, stage: str = stage,
                      profile: dict = profile) -> dict[str, object]:
                logger.info("Building TensorRT engine for %s (%s) ...", stage, precision)
                meta = build_tensorrt_engine(
                    onnx_path, out / f"{stage}.engine", profile, fp16=fp16,
                    workspace_bytes=workspace_bytes, timing_cache=cache.root / "timing.cache",
                )
                source = json.loads((onnx_path.parent / "metadata.json").read_text())
                return {**meta, "onnx": str(onnx_path),
                        "checkpoint_sha256": source["key"]["checkpoint_sha256"],
                        "checkpoint": source.get("checkpoint")}

            engines[stage] = cache.get_or_build(key, build) / f"{stage}.engine"
    return engines, config, export_class_names(folders)


class TensorRTEngine(GraphEngine):
    """TensorRT engines (one per graph) run through :class:`TensorRTGraph`."""

    @classmethod
    def from_checkpoints(
        cls,
        tokenizer: Path | None,
        classifier: Path | None,
        *,
        device: str = "cuda",
        precision: str = "fp32",
        cache_dir: Path | None = None,
        channels: tuple[int, int, int] = DEFAULT_CHANNELS,
        patches: tuple[int, int, int] = DEFAULT_PATCHES,
    ) -> TensorRTEngine:
        if not device.startswith("cuda"):
            raise ValueError(f"TensorRT runs on CUDA devices only, got device={device!r}.")
        index = int(device.split(":")[1]) if ":" in device else 0
        files, config, class_names = compile_engines(
            EngineCache(cache_dir), tokenizer, classifier, precision=precision,
            channels=channels, patches=patches,
        )
        graphs = {stage: TensorRTGraph(path, index) for stage, path in files.items()}
        v = tensorrt_versions()
        return cls(
            graphs, config, name="tensorrt", precision=precision, class_names=class_names,
            details=f"TensorRT {v['tensorrt']}, CUDA {v['cuda']}, {v['gpu']}; profile channels "
            f"{channels}, patches {patches}",
        )
