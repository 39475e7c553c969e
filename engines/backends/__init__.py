"""Interchangeable inference backends behind one interface (PyTorch, ONNX Runtime, TensorRT).

    from neurorvq_stream.engines.backends import create_engine
    engine = create_engine("tokenizer.pt", "classifier.safetensors", backend="auto")
    engine.warmup(channels, n_patches=4)
    out = engine.run(x, channels)     # EngineOutput: tokens, reconstruction, probabilities
    print(engine.describe())          # which backend, and why it was picked

Exported graphs and compiled engines are cached per user (``default_cache_dir``;
``$NEURORVQ_CACHE_DIR`` moves it); ``compile_engines`` and ``export_graphs`` build them
ahead of a run (``build_engine.py``).
"""

from ._base import EngineOutput, InferenceEngine
from ._cache import EngineCache, default_cache_dir
from ._export import GRAPH_FILES, export_graphs
from ._factory import BACKENDS, create_engine
from ._graph import GraphEngine
from ._onnxruntime import OrtGraph
from ._tensorrt import compile_engines, graph_profile, tensorrt_unavailable_reason
from ._trt_check import check_onnx_for_tensorrt

__all__ = [
    "BACKENDS",
    "GRAPH_FILES",
    "EngineCache",
    "EngineOutput",
    "GraphEngine",
    "InferenceEngine",
    "OrtGraph",
    "check_onnx_for_tensorrt",
    "compile_engines",
    "create_engine",
    "default_cache_dir",
    "export_graphs",
    "graph_profile",
    "tensorrt_unavailable_reason",
]
