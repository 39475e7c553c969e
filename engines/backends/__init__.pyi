from ._base import InferenceEngine
from ._export import export_graphs
from ._factory import create_engine
from ._names import BACKENDS
from ._tensorrt import compile_engines, tensorrt_unavailable_reason

__all__ = [
    "BACKENDS",
    "InferenceEngine",
    "compile_engines",
    "create_engine",
    "export_graphs",
    "tensorrt_unavailable_reason",
]
