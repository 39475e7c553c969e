from ._base import EngineOutput, InferenceEngine
from ._cache import EngineCache, default_cache_dir
from ._export import GRAPH_FILES, export_graphs
from ._factory import create_engine
from ._graph import GraphEngine
from ._names import BACKENDS
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
