"""Interchangeable inference backends behind one interface (PyTorch, ONNX Runtime, TensorRT).

    from engines.backends import create_engine
    engine = create_engine("tokenizer.pt", "classifier.safetensors", backend="auto")
    engine.warmup(channels, n_patches=4)
    out = engine.run(x, channels)     # EngineOutput: tokens, reconstruction, probabilities
    print(engine.describe())          # which backend, and why it was picked
"""

from ._base import EngineOutput, InferenceEngine
from ._cache import CacheKey, EngineCache, file_sha256, library_versions
from ._export import GRAPH_FILES, export_graphs, to_fp16
from ._factory import BACKENDS, create_engine
from ._graph import GraphEngine
from ._onnxruntime import OrtEngine, OrtGraph
from ._tensorrt import (
    DEFAULT_CHANNELS,
    DEFAULT_PATCHES,
    TensorRTEngine,
    TensorRTGraph,
    build_tensorrt_engine,
    compile_engines,
    graph_profile,
    tensorrt_unavailable_reason,
    tensorrt_versions,
)
from ._torch import TorchEngine
from ._trt_check import CheckIssue, check_onnx_for_tensorrt, support_matrix

__all__ = [
    "BACKENDS",
    "DEFAULT_CHANNELS",
    "DEFAULT_PATCHES",
    "GRAPH_FILES",
    "CacheKey",
    "CheckIssue",
    "EngineCache",
    "EngineOutput",
    "GraphEngine",
    "InferenceEngine",
    "OrtEngine",
    "OrtGraph",
    "TensorRTEngine",
    "TensorRTGraph",
    "TorchEngine",
    "build_tensorrt_engine",
    "check_onnx_for_tensorrt",
    "compile_engines",
    "create_engine",
    "export_graphs",
    "file_sha256",
    "graph_profile",
    "library_versions",
    "support_matrix",
    "tensorrt_unavailable_reason",
    "tensorrt_versions",
    "to_fp16",
]
