"""Per-window latency of every inference backend available here, side by side.

v1-size random-weight tokenizer + classifier (``bench_engine.build_models``), batch 1, one
``engine.run(x, channels)`` per window exactly as the streamer calls it: tokenize +
reconstruct + classify. Prints median and p99 of the whole window and the median of each
stage. On a CUDA machine it adds PyTorch CUDA fp32 / bf16, with and without CUDA graphs,
ONNX Runtime CUDA and TensorRT where installed. The CPU may be shared: compare rows of one
run, not runs.

    python benchmarks/bench_backends.py               # CPU shapes 20x4, 64x4 (+ 128x4 on GPU)
    python benchmarks/bench_backends.py --quick       # one shape, few repetitions
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from neurorvq_stream.engines import ELECTRODES, save_checkpoint
from neurorvq_stream.engines.backends import create_engine, tensorrt_unavailable_reason

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_engine import build_models

CPU_SHAPES = ((20, 4), (64, 4))
GPU_SHAPES = ((20, 4), (64, 4), (128, 4))


def configurations(threads: int) -> list[tuple[str, dict]]:
    """(label, create_engine kwargs) of every backend usable on this machine."""
    import onnxruntime as ort

    configs = [
        ("pytorch cpu fp32", {"backend": "pytorch", "device": "cpu", "threads": threads}),
        ("onnxruntime cpu fp32", {"backend": "onnxruntime", "device": "cpu", "threads": threads}),
    ]
    if torch.cuda.is_available():
        for prec in ("fp32", "bf16"):
            for graphs in (False, True):
                label = f"pytorch cuda {prec}{' +graphs' if graphs else ''}"
                configs.append(
                    (
                        label,
                        {
                            "backend": "pytorch",
                            "device": "cuda",
                            "precision": prec,
                            "cuda_graphs": graphs,
                        },
                    )
                )
    if "CUDAExecutionProvider" in ort.get_available_providers():
        configs.append(("onnxruntime cuda fp32", {"backend": "onnxruntime", "device": "cuda"}))
    if tensorrt_unavailable_reason() is None:
        for prec in ("fp32", "fp16"):
            configs.append((f"tensorrt {prec}", {"backend": "tensorrt", "precision": prec}))
    return configs


def bench(engine, n_ch: int, n_p: int, reps: int) -> dict[str, float]:
    channels = list(ELECTRODES[:n_ch])
    x = (np.random.default_rng(0).standard_normal((n_ch, n_p * 200)) * 20).astype(np.float32)
    engine.warmup(channels, n_p)
    total, stages = np.empty(reps), {"tokenize": [], "reconstruct": [], "classify": []}
    for i in range(reps):
        t0 = time.perf_counter()
        out = engine.run(x, channels)
        total[i] = time.perf_counter() - t0
        for k, v in out.timings.items():
            stages[k].append(v)
    ms = {"median": np.median(total) * 1e3, "p99": np.percentile(total, 99) * 1e3}
    ms.update({k: np.median(v) * 1e3 for k, v in stages.items()})
    return ms


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one shape, 3 repetitions")
    parser.add_argument("--reps", type=int, default=20, help="timed windows per cell")
    parser.add_argument("--threads", type=int, default=2, help="CPU threads per backend")
    args = parser.parse_args(argv)
    shapes = GPU_SHAPES if torch.cuda.is_available() else CPU_SHAPES
    shapes, reps = (shapes[:1], 3) if args.quick else (shapes, args.reps)
    tok, fm = build_models()
    print(
        f"torch {torch.__version__}, {args.threads} CPU thread(s)"
        + (f", GPU {torch.cuda.get_device_name()}" if torch.cuda.is_available() else "")
    )
    header = (
        f"{'backend':28s} {'shape':>7s} {'median':>8s} {'p99':>8s} {'tokenize':>9s} "
        f"{'recon':>8s} {'classify':>9s}  (ms per window)"
    )
    print(header)
    print("-" * len(header))
    with tempfile.TemporaryDirectory() as tmp:
        tok_path = save_checkpoint(tok, Path(tmp) / "v1_tokenizer.safetensors")
        clf_path = save_checkpoint(fm, Path(tmp) / "v1_classifier.safetensors")
        for label, kwargs in configurations(args.threads):
            graphs = kwargs.pop("cuda_graphs", None)
            engine = create_engine(tok_path, clf_path, cache_dir=Path(tmp) / "cache", **kwargs)
            if graphs is not None:
                engine.cuda_graphs = graphs
            for n_ch, n_p in shapes:
                r = bench(engine, n_ch, n_p, reps)
                print(
                    f"{label:28s} {f'{n_ch}x{n_p}':>7s} {r['median']:8.1f} {r['p99']:8.1f} "
                    f"{r['tokenize']:9.1f} {r['reconstruct']:8.1f} {r['classify']:9.1f}",
                    flush=True,
                )
            del engine


if __name__ == "__main__":
    main()
