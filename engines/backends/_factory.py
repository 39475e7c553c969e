"""``create_engine``: one call that loads the models on the fastest backend available.

``auto`` follows TensorRT > ONNX Runtime CUDA > PyTorch CUDA > ONNX Runtime CPU > PyTorch
CPU and records why each faster option was passed over, so a user who expected the GPU
sees in the log and in ``describe()`` what was missing.

On CPU, ONNX Runtime stays ahead of PyTorch although only PyTorch has the exact screened
nearest-code search (``engines._nearest``): measured on a 2-core AVX2 EPYC, 2 threads
(``benchmarks/bench_backends.py``), ONNX Runtime's whole window was still faster (fused
transformer kernels, and its idle threads sleep instead of spinning, which matters on a
shared CPU). ONNX Runtime has no bf16 MatMul on CPU (1.32: NOT_IMPLEMENTED).
"""

from __future__ import annotations

import importlib.util
import logging
from pathlib import Path

from .._checkpoint import CheckpointError
from ._base import InferenceEngine
from ._names import BACKENDS

logger = logging.getLogger(__name__)

_ORT_BEFORE_TORCH_CPU = (
    "; ONNX Runtime CPU comes before PyTorch CPU, whose exact screened search measured "
    "too little to make up for its slower eager transformer (benchmarks/bench_backends.py)"
)


def _ort_providers() -> list[str]:
    if importlib.util.find_spec("onnxruntime") is None:
        return []
    import onnxruntime as ort

    return list(ort.get_available_providers())


def _cuda() -> bool:
    import torch

    return torch.cuda.is_available()


def _default_device(backend: str) -> str:
    """A named backend without a device uses the GPU when that backend can."""
    if backend == "tensorrt":
        return "cuda"
    if backend == "onnxruntime":
        return "cuda" if "CUDAExecutionProvider" in _ort_providers() else "cpu"
    return "cuda" if _cuda() else "cpu"


def _candidates(device: str | None) -> tuple[list[tuple[str, str]], list[str]]:
    """Usable (backend, device) pairs in preference order, and why the others were skipped."""
    from ._tensorrt import tensorrt_unavailable_reason

    cpu_only = device is not None and device.startswith("cpu")
    skipped: list[str] = []
    usable: list[tuple[str, str]] = []
    gpu = device if device and device.startswith("cuda") else "cuda"
    if cpu_only:
        skipped.append(f"GPU backends: device={device!r} was asked for")
    else:
        trt_reason = tensorrt_unavailable_reason()
        if trt_reason is None:
            usable.append(("tensorrt", gpu))
        else:
            skipped.append(f"TensorRT: {trt_reason}")
        if "CUDAExecutionProvider" in _ort_providers():
            usable.append(("onnxruntime", gpu))
        else:
            skipped.append("ONNX Runtime CUDA: no CUDAExecutionProvider in this onnxruntime")
        if _cuda():
            usable.append(("pytorch", gpu))
        else:
            skipped.append("PyTorch CUDA: torch.cuda.is_available() is False")
    if "CPUExecutionProvider" in _ort_providers():
        usable.append(("onnxruntime", "cpu"))
    else:
        skipped.append("ONNX Runtime CPU: onnxruntime is not installed")
    usable.append(("pytorch", "cpu"))
    return usable, skipped


def _build(
    backend: str,
    device: str,
    tokenizer: Path | None,
    classifier: Path | None,
    precision: str,
    cache_dir: Path | None,
    threads: int | None,
) -> InferenceEngine:
    if backend == "pytorch":
        import torch

        from .._api import load_classifier
        from .._checkpoint import build_tokenizer
        from ._torch import TorchEngine

        if threads is not None:
            torch.set_num_threads(threads)
        clf = load_classifier(classifier) if classifier else None
        return TorchEngine(
            build_tokenizer(tokenizer) if tokenizer else None,
            clf.module if clf else None,
            device=device,
            precision=precision,
            class_names=clf.class_names if clf else (),
        )
    if backend == "onnxruntime":
        from ._onnxruntime import OrtEngine

        return OrtEngine.from_checkpoints(
            tokenizer, classifier, device=device, precision=precision, cache_dir=cache_dir,
            threads=threads,
        )
    if backend == "tensorrt":
        from ._tensorrt import TensorRTEngine

        return TensorRTEngine.from_checkpoints(
            tokenizer, classifier, device=device, precision=precision, cache_dir=cache_dir,
        )
    raise ValueError(f"Unknown backend {backend!r}; choose one of {BACKENDS}.")


def create_engine(
    tokenizer: str | Path | None,
    classifier: str | Path | None,
    backend: str = "auto",
    device: str | None = None,
    precision: str = "fp32",
    cache_dir: str | Path | None = None,
    threads: int | None = None,
) -> InferenceEngine:
    """Load the tokenizer and/or classifier checkpoint on ``backend`` and return it ready.

    ``backend="auto"`` takes the fastest usable backend (falling back, with a warning, if
    one fails to load) and states its choice in ``engine.selection_reason``. ``threads``
    caps CPU threads (a streaming process shares the machine with acquisition and display).
    Built artifacts go to ``cache_dir``, by default the per-user cache (``default_cache_dir``).
    """
    if tokenizer is None and classifier is None:
        raise ValueError("Give a tokenizer checkpoint, a classifier checkpoint, or both.")
    paths = [Path(p) if p is not None else None for p in (tokenizer, classifier)]
    for what, p in zip(("tokenizer", "classifier"), paths, strict=True):
        if p is not None and not p.is_file():
            raise FileNotFoundError(f"The {what} checkpoint {str(p)!r} does not exist.")
    if backend not in BACKENDS:
        raise ValueError(f"Unknown backend {backend!r}; choose one of {BACKENDS}.")
    cache = Path(cache_dir) if cache_dir is not None else None
    if backend != "auto":
        dev = device or _default_device(backend)
        engine = _build(backend, dev, *paths, precision, cache, threads)
        engine.load()
        engine.selection_reason = f"backend={backend!r} was asked for"
        return engine
    usable, skipped = _candidates(device)
    errors: list[str] = []
    for name, dev in usable:
        prec = precision if dev.startswith("cuda") else "fp32"
        try:
            engine = _build(name, dev, *paths, prec, cache, threads)
            engine.load()
        except CheckpointError:
            raise  # the file is at fault, not the backend: no other backend can read it
        except (RuntimeError, OSError, ImportError, ValueError) as err:
            logger.warning("auto: %s on %s failed to load (%s); trying the next backend.",
                           name, dev, err)
            errors.append(f"{name} {dev}: failed to load ({err})")
            continue
        passed_over = "; ".join([*skipped, *errors]) or "nothing faster was skipped"
        engine.selection_reason = (
            f"auto: first usable in the speed order; passed over: {passed_over}"
        )
        if (name, dev) == ("onnxruntime", "cpu"):
            engine.selection_reason += _ORT_BEFORE_TORCH_CPU
        logger.info("Inference engine: %s", engine.describe())
        return engine
    raise RuntimeError("No backend could load the models: " + "; ".join(errors))
