"""ONNX Runtime backend: the exported tokenize / decode / classify graphs in sessions.

Sessions are created once with every graph optimization on, sequential execution and few
intra-op threads (a streaming process shares its cores with acquisition and display), and
the optimized graphs are kept in the engine cache so the next start skips optimization.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from ._cache import CacheKey, EngineCache, cpu_name, file_sha256, library_versions
from ._export import GRAPH_FILES, export_class_names, export_graphs
from ._graph import GraphEngine

logger = logging.getLogger(__name__)

DEFAULT_THREADS = 2


def _providers(device: str) -> list[str]:
    import onnxruntime as ort

    available = ort.get_available_providers()
    if device.startswith("cuda"):
        if "CUDAExecutionProvider" not in available:
            raise RuntimeError(
                f"device={device!r} needs onnxruntime's CUDAExecutionProvider; this build has "
                f"{available}. Install onnxruntime-gpu or use device='cpu'."
            )
        return ["CUDAExecutionProvider", "CPUExecutionProvider"]
    return ["CPUExecutionProvider"]


class OrtGraph:
    """One ONNX graph in one session; called with named numpy inputs, returns named outputs."""

    def __init__(
        self,
        path: str | Path,
        device: str = "cpu",
        threads: int = DEFAULT_THREADS,
        optimized_path: str | Path | None = None,
    ) -> None:
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        # Idle workers sleep instead of spinning: the process shares its cores with the LSL
        # inlet and the display, and spinning threads starve them (and each other).
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        opts.log_severity_level = 3  # errors only: optimizer notes would flood a live console
        if optimized_path is not None:
            opts.optimized_model_filepath = str(optimized_path)
        self.session = ort.InferenceSession(str(path), opts, providers=_providers(device))
        self.input_names = [i.name for i in self.session.get_inputs()]
        self.output_names = [o.name for o in self.session.get_outputs()]

    def __call__(self, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        feed = {n: inputs[n] for n in self.input_names}
        return dict(zip(self.output_names, self.session.run(None, feed), strict=True))


def ort_cache_key(
    onnx_folder: Path, device: str, precision: str
) -> CacheKey:
    """Optimized graphs depend on the exported graphs, ORT's version and the provider."""
    import onnxruntime as ort

    meta = onnx_folder / "metadata.json"
    return CacheKey(
        name="ort-" + ("cuda" if device.startswith("cuda") else "cpu"),
        checkpoint_sha256=file_sha256(meta),
        precision=precision,
        versions=library_versions({"onnxruntime": ort.__version__, "cpu": cpu_name()}),
    )


class OrtEngine(GraphEngine):
    """ONNX Runtime engine built from checkpoints through the engine cache."""

    @classmethod
    def from_checkpoints(
        cls,
        tokenizer: Path | None,
        classifier: Path | None,
        *,
        device: str = "cpu",
        precision: str = "fp32",
        cache_dir: Path | None = None,
        threads: int | None = None,
    ) -> OrtEngine:
        import onnxruntime as ort

        if precision not in ("fp32", "fp16"):
            raise ValueError(f"ONNX Runtime runs fp32 or fp16 graphs, not {precision!r}.")
        if precision != "fp32" and not device.startswith("cuda"):
            raise ValueError(f"precision={precision!r} needs device='cuda'; use fp32 on CPU.")
        cache = EngineCache(cache_dir)
        folders, config = export_graphs(cache, tokenizer, classifier, precision)
        threads = DEFAULT_THREADS if threads is None else threads
        graphs: dict[str, OrtGraph] = {}
        for folder in folders:
            def optimize(out: Path, folder: Path = folder) -> dict[str, object]:
                for graph_file in sorted(folder.glob("*.onnx")):
                    OrtGraph(graph_file, device, threads, out / graph_file.name)
                return {"source": str(folder)}

            opt_folder = cache.get_or_build(ort_cache_key(folder, device, precision), optimize)
            for stage, fname in GRAPH_FILES.items():
                if (opt_folder / fname).is_file():
                    graphs[stage] = OrtGraph(opt_folder / fname, device, threads)
        provider = "CUDA" if device.startswith("cuda") else "CPU"
        return cls(
            graphs, config, name=f"onnxruntime-{provider.lower()}", precision=precision,
            class_names=export_class_names(folders),
            details=f"onnxruntime {ort.__version__} {provider}ExecutionProvider, {threads} "
            "intra-op thread(s), ORT_ENABLE_ALL, sequential",
        )
