"""Per-window latency of every inference backend here, beside the authors' formulation.

v1-size random-weight tokenizer + classifier (``bench_engine.build_models``), batch 1, one
``engine.run(x, channels)`` per window exactly as the streamer calls it: tokens +
reconstruction + class probabilities. All configurations run round-robin in one process
(the CPU may be shared: compare rows of one run). Printed per shape: p50 / p99 of the whole
window, stage medians, GFLOP/s, speed-up against the authors' formulation (in-repo,
``_naive_neurorvq``) and, with ``--authors PATH``, against the authors' own code, the
exact search's fp32 fallback rate, and for the reduced-precision modes their token
agreement and largest logit / reconstruction error against fp32. On a CUDA machine it adds
PyTorch CUDA fp32 / bf16 with and without CUDA graphs, ONNX Runtime CUDA and TensorRT.

    python benchmarks/bench_backends.py                        # 20x4, 64x4 (+128x4 on GPU)
    python benchmarks/bench_backends.py --authors ~/NeuroRVQ   # + the authors' own code
    python benchmarks/bench_backends.py --quick                # one shape, few windows
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from neurorvq_stream.engines import ELECTRODES, load_classifier
from neurorvq_stream.engines._api import patch_indices
from neurorvq_stream.engines._checkpoint import build_tokenizer, save_checkpoint
from neurorvq_stream.engines._nearest import native_bf16
from neurorvq_stream.engines.backends import create_engine, tensorrt_unavailable_reason
from neurorvq_stream.engines.backends._torch import TorchEngine

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _naive_neurorvq import AuthorsCode, NaiveNeuroRVQ
from bench_engine import build_models, classify_flops, decode_flops, tokenize_flops

CPU_SHAPES = ((20, 4), (64, 4))
GPU_SHAPES = ((20, 4), (64, 4), (128, 4))


def engines_here(tok_path: Path, clf_path: Path, cache: Path, threads: int) -> dict:
    """{label: engine} of every backend usable on this machine, loaded and ready."""
    import onnxruntime as ort

    def torch_cpu(precision: str = "fp32", screen: str = "auto") -> TorchEngine:
        clf = load_classifier(clf_path)
        engine = TorchEngine(build_tokenizer(tok_path), clf.module, precision=precision,
                             screen=screen, class_names=clf.class_names)
        engine.load()
        return engine

    engines = {
        "auto (pipeline default, cpu)": create_engine(
            tok_path, clf_path, device="cpu", cache_dir=cache, threads=threads),
        "pytorch cpu fp32, exact search": torch_cpu(),
        "pytorch cpu fp32, fp32 search": torch_cpu(screen="none"),
        "pytorch cpu bf16 (fast mode)": torch_cpu("bf16"),
        "onnxruntime cpu fp32": create_engine(
            tok_path, clf_path, backend="onnxruntime", device="cpu", cache_dir=cache,
            threads=threads),
    }
    if torch.cuda.is_available():
        for prec in ("fp32", "bf16"):
            for graphs in (False, True):
                engine = create_engine(tok_path, clf_path, backend="pytorch", device="cuda",
                                       precision=prec, cache_dir=cache)
                engine.cuda_graphs = graphs
                engines[f"pytorch cuda {prec} whole window{' +graphs' if graphs else ''}"] = (
                    engine
                )
        staged = create_engine(tok_path, clf_path, backend="pytorch", device="cuda",
                               cache_dir=cache)
        staged.whole_window = False
        engines["pytorch cuda fp32 staged +graphs"] = staged
    if "CUDAExecutionProvider" in ort.get_available_providers():
        engines["onnxruntime cuda fp32"] = create_engine(
            tok_path, clf_path, backend="onnxruntime", device="cuda", cache_dir=cache)
    if tensorrt_unavailable_reason() is None:
        for prec in ("fp32", "fp16"):
            engines[f"tensorrt {prec}"] = create_engine(
                tok_path, clf_path, backend="tensorrt", precision=prec, cache_dir=cache)
    return engines


def baselines(tok, fm, authors: AuthorsCode | None) -> dict[str, Callable]:
    """The whole window (tokens + reconstruction + logits) the authors' way, as callables."""
    naive = NaiveNeuroRVQ(tok.state_dict(), fm.state_dict(), tok.config.num_heads)

    def formulation(x, s, t):
        patches = x.reshape(1, -1, 200)
        naive.reconstruct(patches, s, t)
        return naive.logits(patches, s, t)

    out = {"authors' formulation": formulation}
    if authors is not None:
        def code(x, s, t):
            authors.reconstruct(x.reshape(1, x.shape[1], -1), s, t)  # their tokenizer forward
            return authors.logits(x, s, t)

        out["authors' code"] = code
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one shape, 3 windows")
    parser.add_argument("--reps", type=int, default=20, help="timed windows per cell")
    parser.add_argument("--threads", type=int, default=2, help="CPU threads per backend")
    parser.add_argument("--authors", metavar="PATH", help="clone of the authors' repository")
    parser.add_argument("--compile", action="store_true",
                        help="GPU: also time the AOTInductor-compiled whole window (compiles "
                        "each shape first, about a minute each, cached)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    shapes = GPU_SHAPES if torch.cuda.is_available() else CPU_SHAPES
    shapes, reps = (shapes[:1], 3) if args.quick else (shapes, args.reps)
    tok, fm = build_models()
    cfg = tok.config
    authors = (
        AuthorsCode(args.authors, tok.state_dict(), fm.state_dict(), cfg.n_out)
        if args.authors else None
    )
    print(f"torch {torch.__version__}, {args.threads} CPU thread(s), OMP_WAIT_POLICY="
          f"{os.environ.get('OMP_WAIT_POLICY', '(unset)')}"
          + (f", GPU {torch.cuda.get_device_name()}" if torch.cuda.is_available() else ""))
    with tempfile.TemporaryDirectory() as tmp:
        tok_path = save_checkpoint(tok, Path(tmp) / "v1_tokenizer.safetensors")
        clf_path = save_checkpoint(fm, Path(tmp) / "v1_classifier.safetensors")
        engines = engines_here(tok_path, clf_path, Path(tmp) / "cache", args.threads)
        print("auto picks:", engines["auto (pipeline default, cpu)"].describe())
        for label, engine in engines.items():
            if label.startswith("pytorch"):
                print(f"{label}: {engine.describe()}")
        base = baselines(tok, fm, authors)
        if args.compile and torch.cuda.is_available():
            compiled = create_engine(tok_path, clf_path, backend="pytorch", device="cuda",
                                     cache_dir=Path(tmp) / "cache")
            for n_ch, n_p in shapes:
                compiled.compile_window(n_ch, n_p, cache_dir=Path(tmp) / "cache")
            engines["pytorch cuda fp32 AOTInductor +graphs"] = compiled
        for n_ch, n_p in shapes:
            bench_shape(engines, base, cfg, n_ch, n_p, reps)


def bench_shape(engines: dict, base: dict, cfg, n_ch: int, n_p: int, reps: int) -> None:
    channels = list(ELECTRODES[:n_ch])
    x = (np.random.default_rng(0).standard_normal((n_ch, n_p * 200)) * 20).astype(np.float32)
    s_np, t_np = patch_indices(channels, n_p)
    s, t = torch.from_numpy(s_np)[None], torch.from_numpy(t_np)[None]
    x4 = torch.from_numpy(x).reshape(1, n_ch, n_p, 200)
    tokens = n_ch * n_p
    gflop = (tokenize_flops(tokens, cfg) + decode_flops(tokens, cfg)
             + classify_flops(tokens, cfg)) / 1e9
    # Emulated bf16 (no AVX512-BF16/AMX) is too slow to repeat: one window, marked.
    once = set() if native_bf16() else {k for k in engines if "bf16" in k and "cpu" in k}
    for label, engine in engines.items():
        engine.warmup(channels, n_p, repeats=1 if label in once else 2)
        stats = getattr(engine, "search_stats", None)
        if stats is not None:
            stats.reset()
    runs: dict[str, Callable] = {label: (lambda e=e: e.run(x, channels))
                                 for label, e in engines.items() if label not in once}
    for label, fn in base.items():
        runs[label] = lambda fn=fn: _no_grad(fn, x4, s, t)
    for fn in base.values():
        _no_grad(fn, x4, s, t)
    times = {label: np.empty(reps) for label in runs}
    stages: dict[str, dict[str, list]] = {label: {} for label in engines}
    outputs: dict[str, object] = {}
    for i in range(reps):
        for label, fn in runs.items():
            t0 = time.perf_counter()
            out = fn()
            times[label][i] = (time.perf_counter() - t0) * 1e3
            if label in engines:
                outputs[label] = out
                for k, v in out.timings.items():
                    stages[label].setdefault(k, []).append(v * 1e3)
    for label in once:
        t0 = time.perf_counter()
        outputs[label] = engines[label].run(x, channels)
        times[label] = np.array([(time.perf_counter() - t0) * 1e3])
        stages[label] = {k: [v * 1e3] for k, v in outputs[label].timings.items()}
    ref = outputs["pytorch cpu fp32, fp32 search"]
    names = list(base)
    print(f"\n{n_ch} ch x {n_p} patches ({gflop:.1f} GFLOP per window), {reps} windows, "
          "ms per window:")
    print("| configuration | p50 | p99 | tokenize | recon | classify | GFLOP/s | "
          + " | ".join(f"x vs {b}" for b in names) + " | exact-search fallback | "
          "tokens = fp32 | max logit err | max recon err (rel) |")
    print("|---" * (10 + len(names)) + "|")
    p50 = {label: np.median(v) for label, v in times.items()}
    for label, v in times.items():
        st = {k: f"{np.median(val):.0f}" for k, val in stages.get(label, {}).items()}
        ratios = " | ".join(f"{p50[b] / p50[label]:.2f}x" for b in names)
        agree = logit = recon = fallback = ""
        if label in outputs:
            out = outputs[label]
            agree = f"{100 * np.mean(out.tokens == ref.tokens):.2f} %"
            logit = f"{np.abs(out.logits - ref.logits).max():.1e}"
            scale = np.abs(ref.reconstruction).max()
            recon = f"{np.abs(out.reconstruction - ref.reconstruction).max() / scale:.1e}"
            stats = getattr(engines[label], "search_stats", None)
            if stats is not None and stats.blocks:
                fallback = (f"{stats.recomputed}/{stats.blocks} blocks "
                            f"({100 * stats.fallback_rate:.1f} %)")
        note = " (emulated bf16, 1 window)" if label in once else ""
        print(f"| {label}{note} | {p50[label]:.0f} | {np.percentile(v, 99):.0f} | "
              f"{st.get('tokenize', '')} | {st.get('reconstruct', '')} | "
              f"{st.get('classify', '')} | {gflop / p50[label] * 1e3:.1f} | {ratios} | "
              f"{fallback} | {agree} | {logit} | {recon} |", flush=True)


def _no_grad(fn, *args):
    with torch.no_grad():
        return fn(*args)


if __name__ == "__main__":
    main()
