"""Latency of the NeuroRVQ engines on CPU: PyTorch (engines), ONNX Runtime, and a naive baseline.

v1-size random-weight models (embed 200, encoder 12, decoder 3, FM 12 blocks, 8192 x 128
codes), batch 1, fp32. For each window shape the table gives median / p95 latency of
tokenize, tokenize+reconstruct and classify, the achieved GFLOP/s from an analytic FLOP
count, and, as a ceiling, this machine's fp32 matmul rate measured in the same run. The CPU
is shared (other processes compete for it): compare rows of one run, not runs.

    python benchmarks/bench_engine.py            # full table
    python benchmarks/bench_engine.py --quick    # smoke test: one shape, few repetitions
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch

from neurorvq_stream.engines import (
    ELECTRODES,
    NeuroRVQConfig,
    NeuroRVQFoundationModel,
    NeuroRVQTokenizer,
    patch_indices,
)
from neurorvq_stream.engines.onnx_export import export_classifier, export_decoder, export_tokenizer

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _naive_neurorvq import NaiveNeuroRVQ

SHAPES = ((20, 4), (32, 4), (64, 4), (128, 2))


def build_models(seed: int = 0) -> tuple[NeuroRVQTokenizer, NeuroRVQFoundationModel]:
    """v1-size models with random weights (unit-norm codebooks, as trained ones are)."""
    torch.manual_seed(seed)
    cfg = NeuroRVQConfig(n_out=4)
    tok, fm = NeuroRVQTokenizer(cfg).eval(), NeuroRVQFoundationModel(cfg).eval()
    with torch.no_grad():
        for model in (tok, fm):
            for name, p in model.named_parameters():
                if name.endswith(("pos_embed", "time_embed", "cls_token")):
                    p.normal_(0, 0.02)
        for name, p in tok.named_parameters():
            if name.endswith("embedding.weight"):
                p.copy_(torch.nn.functional.normalize(p, dim=-1))
    return tok, fm


def backbone_flops(tokens: int, depth: int, cfg: NeuroRVQConfig) -> float:
    """FLOPs of ``depth`` blocks over ``tokens`` tokens (+ cls) for one branch."""
    n, d, h = tokens + 1, cfg.embed_dim, cfg.mlp_hidden
    per_token = 2 * d * 3 * d + 2 * d * d + 2 * 2 * d * h + 2 * 2 * n * d
    return depth * n * per_token


def embed_flops(tokens: int, cfg: NeuroRVQConfig) -> float:
    """FLOPs of the multi-scale conv patch embedding, all branches."""
    p, ch = cfg.patch_size, cfg.conv_channels
    conv1 = sum(2 * ch * k * p for k in cfg.kernels1)
    conv2 = sum(2 * ch * ch * k * p // 2 for k in cfg.kernels2)
    return tokens * (conv1 + conv2)


def tokenize_flops(tokens: int, cfg: NeuroRVQConfig) -> float:
    nb, d = cfg.n_branches, cfg.embed_dim
    heads = 2 * (d * d + d * cfg.code_dim) * tokens
    rvq = 2 * cfg.code_dim * cfg.n_code * cfg.n_levels * tokens
    enc = backbone_flops(tokens, cfg.depth_encoder, cfg)
    return embed_flops(tokens, cfg) + nb * (enc + heads + rvq)


def decode_flops(tokens: int, cfg: NeuroRVQConfig) -> float:
    nb, d, p = cfg.n_branches, cfg.embed_dim, cfg.patch_size
    proj = 2 * cfg.code_dim * d * tokens
    heads = 3 * 2 * (nb * d * d + d * p) * tokens
    dft = 2 * (p * 2 * p) * tokens * 2
    return nb * (proj + backbone_flops(tokens, cfg.depth_decoder, cfg)) + heads + dft


def classify_flops(tokens: int, cfg: NeuroRVQConfig) -> float:
    return embed_flops(tokens, cfg) + cfg.n_branches * backbone_flops(tokens, cfg.depth, cfg)


def measure_matmul_rate(size: int = 1024, reps: int = 20) -> float:
    """Best-of fp32 GEMM rate in GFLOP/s (torch, same threads as the engines)."""
    a, b = torch.randn(size, size), torch.randn(size, size)
    for _ in range(3):
        a @ b
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        a @ b
        times.append(time.perf_counter() - t0)
    return 2 * size**3 / np.median(times) / 1e9


def timeit(fn: Callable[[], object], reps: int, warmup: int = 2) -> np.ndarray:
    for _ in range(warmup):
        fn()
    out = np.empty(reps)
    for i in range(reps):
        t0 = time.perf_counter()
        fn()
        out[i] = time.perf_counter() - t0
    return out * 1e3


def bench_shape(
    tok: NeuroRVQTokenizer,
    fm: NeuroRVQFoundationModel,
    naive: NaiveNeuroRVQ,
    sessions: tuple[ort.InferenceSession, ...],
    sq_norms: torch.Tensor,
    x: np.ndarray,
    reps: int,
) -> list[tuple]:
    """Time the three paths of the three implementations on one window ``x`` (1, C, A*200)."""
    cfg = tok.config
    s_tok, s_dec, s_clf = sessions
    n_ch, n_p = x.shape[1], x.shape[2] // cfg.patch_size
    # more channels than electrodes (128 > 104): names repeat, as the model allows
    channels = [ELECTRODES[i % len(ELECTRODES)] for i in range(n_ch)]
    s_np, t_np = patch_indices(channels, n_p)
    patches = torch.from_numpy(x).reshape(1, -1, cfg.patch_size)
    s, t = torch.from_numpy(s_np)[None], torch.from_numpy(t_np)[None]
    ch_ix = s_np[::n_p].copy()
    feeds = {"x": x, "channel_ix": ch_ix}

    def pt_rec():
        codes, q = tok.quantize(tok.encode_features(patches, s, t), sq_norms)
        mean, std = tok.amplitude_stats(patches)
        return codes, tok.spectrum_to_signal(*tok.decode(q, s, t), mean, std)

    def ort_rec():
        _, q, m, sd = s_tok.run(None, feeds)
        dec_feeds = {"quantized": q, "channel_ix": ch_ix, "amplitude_mean": m, "amplitude_std": sd}
        return s_dec.run(None, dec_feeds)

    impls = {
        "tokenize": (
            lambda: tok(patches, s, t, sq_norms),
            lambda: s_tok.run(None, feeds),
            lambda: naive.tokenize(patches, s, t),
        ),
        "tokenize+reconstruct": (pt_rec, ort_rec, lambda: naive.reconstruct(patches, s, t)),
        "classify": (
            lambda: fm(patches, s, t),
            lambda: s_clf.run(None, feeds),
            lambda: naive.logits(patches, s, t),
        ),
    }
    n_tok = n_ch * n_p
    flops = {
        "tokenize": tokenize_flops(n_tok, cfg),
        "tokenize+reconstruct": tokenize_flops(n_tok, cfg) + decode_flops(n_tok, cfg),
        "classify": classify_flops(n_tok, cfg),
    }
    rows = []
    with torch.inference_mode():
        ref = impls["tokenize"][0]()
        # Tokens differing from PyTorch's. Different float rounding (ORT kernels) can flip a
        # near-tie in an argmin, which then changes the later levels of that token.
        same = (
            f"{int((naive.tokenize(patches, s, t)[0] != ref).sum())} / "
            f"{int((impls['tokenize'][1]()[0] != ref.numpy()).sum())}"
        )
        for path, fns in impls.items():
            res = [timeit(fn, reps) for fn in fns]
            rows.append((f"{n_ch}x{n_p}", path, flops[path] / 1e9, res, same))
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one shape, 3 repetitions")
    parser.add_argument("--reps", type=int, default=10, help="timed repetitions per cell")
    parser.add_argument("--threads", type=int, default=0, help="CPU threads (0: torch default)")
    args = parser.parse_args(argv)
    shapes, reps = (SHAPES[:1], 3) if args.quick else (SHAPES, args.reps)
    if args.threads:
        torch.set_num_threads(args.threads)
    threads = torch.get_num_threads()

    tok, fm = build_models()
    cfg = tok.config
    naive = NaiveNeuroRVQ(tok.state_dict(), fm.state_dict(), cfg.num_heads)
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    with tempfile.TemporaryDirectory() as tmp:
        paths = (
            export_tokenizer(tok, Path(tmp) / "tok.onnx"),
            export_decoder(tok, Path(tmp) / "dec.onnx"),
            export_classifier(fm, Path(tmp) / "clf.onnx"),
        )
        s_tok, s_dec, s_clf = (
            ort.InferenceSession(str(p), opts, providers=["CPUExecutionProvider"]) for p in paths
        )
    with torch.inference_mode():
        sq_norms = tok.code_sq_norms()  # what the engines.Tokenizer front end keeps
    rate = measure_matmul_rate()
    print(f"\nthreads: {threads}   measured fp32 matmul rate (1024^3 GEMM): {rate:.1f} GFLOP/s")
    print(f"repetitions per cell: {reps}; latency in ms (median / p95); GFLOP/s at the median\n")
    print(
        "| shape | path | GFLOP | PyTorch ms | ONNX RT ms | naive ms | speed-up vs naive "
        "(PT / ORT) | PT GFLOP/s (% matmul) | ORT GFLOP/s | tokens != PT (naive / ORT) |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|", flush=True)
    rng = np.random.default_rng(0)
    for n_ch, n_p in shapes:
        x = (rng.standard_normal((1, n_ch, n_p * 200)) * 20).astype(np.float32)
        for shape, path, gflop, res, same in bench_shape(
            tok, fm, naive, (s_tok, s_dec, s_clf), sq_norms, x, reps
        ):
            med = [np.median(r) for r in res]
            cells = [f"{np.median(r):.1f} / {np.percentile(r, 95):.1f}" for r in res]
            pt_rate, ort_rate = gflop / (med[0] / 1e3), gflop / (med[1] / 1e3)
            print(
                f"| {shape} | {path} | {gflop:.2f} | {cells[0]} | {cells[1]} | {cells[2]} | "
                f"{med[2] / med[0]:.2f}x / {med[2] / med[1]:.2f}x | "
                f"{pt_rate:.1f} ({100 * pt_rate / rate:.0f}%) | {ort_rate:.1f} | {same} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
