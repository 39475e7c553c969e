"""Latency of the NeuroRVQ engines on CPU beside the authors' formulation, and search exactness.

v1-size random-weight models (embed 200, encoder 12, decoder 3, FM 12 blocks, 8192 x 128
unit-norm codes), batch 1, fp32. For each window shape and path (tokenize, tokenize +
reconstruct, classify) the implementations run round-robin in one process, so machine load
hits them alike; the table gives p50 / p99 ms, GFLOP/s at p50 (analytic FLOP count) and the
speed-up against the authors' formulation (``_naive_neurorvq.NaiveNeuroRVQ``, in-repo) and,
with ``--authors PATH``, against the authors' own code imported from a clone.

    python benchmarks/bench_engine.py                      # 20x4 and 64x4, 2 threads
    python benchmarks/bench_engine.py --authors ~/NeuroRVQ # + the authors' own code
    python benchmarks/bench_engine.py --threads 1 --clock cpu  # work done, on a shared CPU
    python benchmarks/bench_engine.py --search-windows 10000   # exact search vs fp32 search
    python benchmarks/bench_engine.py --quick              # smoke test

``--search-windows N`` tokenizes N random windows with the exact screened search and with the
fp32 search, counts differing tokens (must be 0) and how often the fp32 fallback ran.
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
import onnxruntime as ort
import torch

from neurorvq_stream.engines import ELECTRODES, Classifier, NeuroRVQConfig, Tokenizer
from neurorvq_stream.engines._foundation import NeuroRVQFoundationModel
from neurorvq_stream.engines._tokenizer import NeuroRVQTokenizer
from neurorvq_stream.engines.onnx_export import export_classifier, export_decoder, export_tokenizer

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _naive_neurorvq import AuthorsCode, NaiveNeuroRVQ

SHAPES = ((20, 4), (64, 4))
PATHS = ("tokenize", "tokenize+reconstruct", "classify")


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


def search_flops(tokens: int, cfg: NeuroRVQConfig) -> float:
    """FLOPs of the fp32 nearest-code search (all branches and levels)."""
    return cfg.n_branches * 2 * cfg.code_dim * cfg.n_code * cfg.n_levels * tokens


def tokenize_flops(tokens: int, cfg: NeuroRVQConfig) -> float:
    nb, d = cfg.n_branches, cfg.embed_dim
    heads = 2 * (d * d + d * cfg.code_dim) * tokens
    enc = backbone_flops(tokens, cfg.depth_encoder, cfg)
    return embed_flops(tokens, cfg) + nb * (enc + heads) + search_flops(tokens, cfg)


def decode_flops(tokens: int, cfg: NeuroRVQConfig) -> float:
    nb, d, p = cfg.n_branches, cfg.embed_dim, cfg.patch_size
    proj = 2 * cfg.code_dim * d * tokens
    heads = 3 * 2 * (nb * d * d + d * p) * tokens
    dft = 2 * (p * 2 * p) * tokens * 2
    return nb * (proj + backbone_flops(tokens, cfg.depth_decoder, cfg)) + heads + dft


def classify_flops(tokens: int, cfg: NeuroRVQConfig) -> float:
    return embed_flops(tokens, cfg) + cfg.n_branches * backbone_flops(tokens, cfg.depth, cfg)


def path_flops(path: str, tokens: int, cfg: NeuroRVQConfig) -> float:
    if path == "tokenize":
        return tokenize_flops(tokens, cfg)
    if path == "tokenize+reconstruct":
        return tokenize_flops(tokens, cfg) + decode_flops(tokens, cfg)
    return classify_flops(tokens, cfg)


def measure_matmul_rate(size: int = 1024, reps: int = 20, clock: str = "wall") -> float:
    """Median fp32 GEMM rate in GFLOP/s (torch, same threads as the engines)."""
    a, b = torch.randn(size, size), torch.randn(size, size)
    times = round_robin({"gemm": lambda: a @ b}, reps, clock=clock)["gemm"]
    return 2 * size**3 / np.median(times) * 1e3 / 1e9


CLOCKS = {"wall": time.perf_counter, "cpu": time.thread_time}


def round_robin(
    fns: dict[str, Callable[[], object]], reps: int, warmup: int = 2, clock: str = "wall"
):
    """Milliseconds per call of each function, interleaved so that load hits all alike.

    ``clock="cpu"`` counts the calling thread's CPU time instead of wall time: with one
    thread it is the work done, unaffected by other processes taking the CPU away.
    """
    now = CLOCKS[clock]
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    out = {name: np.empty(reps) for name in fns}
    for i in range(reps):
        for name, fn in fns.items():
            t0 = now()
            fn()
            out[name][i] = (now() - t0) * 1e3
    return out


def window(n_ch: int, n_p: int, seed: int = 0) -> tuple[np.ndarray, list[str]]:
    """A random window (1, C, A*200) in uV and C electrode names (repeated past 104)."""
    x = np.random.default_rng(seed).standard_normal((1, n_ch, n_p * 200)) * 20
    return x.astype(np.float32), [ELECTRODES[i % len(ELECTRODES)] for i in range(n_ch)]


class Implementations:
    """Every implementation's three paths as zero-argument callables on one window."""

    def __init__(self, tok, fm, authors: AuthorsCode | None, tmp: Path, threads: int) -> None:
        self.api = Tokenizer(tok, None)
        self.api_fp32 = Tokenizer(tok, None, screen="none")
        self.clf = Classifier(fm, None)
        self.naive = NaiveNeuroRVQ(tok.state_dict(), fm.state_dict(), tok.config.num_heads)
        self.authors = authors
        opts = ort.SessionOptions()  # as the ONNX Runtime backend configures its sessions
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        paths = (
            export_tokenizer(tok, tmp / "tok.onnx"),
            export_decoder(tok, tmp / "dec.onnx"),
            export_classifier(fm, tmp / "clf.onnx"),
        )
        self.ort = [
            ort.InferenceSession(str(p), opts, providers=["CPUExecutionProvider"]) for p in paths
        ]

    def calls(self, x: np.ndarray, channels: list[str]) -> dict[str, dict[str, Callable]]:
        """{path: {implementation: callable}} for window ``x`` (1, C, A*200)."""
        w = self.api.prepare(x, channels)
        patches, s, t = w.patches, w.spatial_ix, w.time_ix
        x4 = torch.from_numpy(x).reshape(1, w.n_channels, w.n_patches, -1)
        feeds = {"x": x, "channel_ix": np.ascontiguousarray(w.spatial_ix[0, :: w.n_patches])}
        s_tok, s_dec, s_clf = self.ort

        def ort_rec():
            _, q, m, sd = s_tok.run(None, feeds)
            dec = {"quantized": q, "channel_ix": feeds["channel_ix"], "amplitude_mean": m,
                   "amplitude_std": sd}
            return s_dec.run(None, dec)

        def naive(fn):
            return lambda: _no_grad(fn, patches, s, t)

        table = {
            "tokenize": {
                "engines API (exact search)": lambda: self.api.tokenize(x, channels),
                "engines API (fp32 search)": lambda: self.api_fp32.tokenize(x, channels),
                "ONNX Runtime": lambda: s_tok.run(None, feeds),
                "authors' formulation": naive(self.naive.tokenize),
            },
            "tokenize+reconstruct": {
                "engines API (exact search)": lambda: self.api.reconstruct(x, channels),
                "engines API (fp32 search)": lambda: self.api_fp32.reconstruct(x, channels),
                "ONNX Runtime": ort_rec,
                "authors' formulation": naive(self.naive.reconstruct),
            },
            "classify": {
                "engines API (exact search)": lambda: self.clf.logits(x, channels),
                "ONNX Runtime": lambda: s_clf.run(None, feeds),
                "authors' formulation": naive(self.naive.logits),
            },
        }
        if self.authors is not None:
            a = self.authors
            table["tokenize"]["authors' code"] = lambda: _no_grad(a.tokens, x4, s, t)
            x3 = torch.from_numpy(x)
            table["tokenize+reconstruct"]["authors' code"] = lambda: _no_grad(
                a.reconstruct, x3, s, t
            )
            table["classify"]["authors' code"] = lambda: _no_grad(a.logits, x4, s, t)
        return table


def _no_grad(fn, *args):
    with torch.no_grad():
        return fn(*args)


def check_tokens(impl: Implementations, x: np.ndarray, channels: list[str]) -> str:
    """Tokens differing from the fp32 search, per implementation (exact ones must show 0)."""
    ref = impl.api_fp32.tokenize(x, channels)
    calls = impl.calls(x, channels)["tokenize"]
    parts = []
    for name, fn in calls.items():
        if name == "engines API (fp32 search)":
            continue
        out = fn()
        codes = out[0] if isinstance(out, (list, tuple)) else out
        codes = codes.numpy() if torch.is_tensor(codes) else np.asarray(codes)
        parts.append(f"{name}: {int((codes.reshape(ref.shape) != ref).sum())}")
    return "; ".join(parts)


def run_latency(args: argparse.Namespace) -> None:
    shapes, reps = ((SHAPES[0],), 3) if args.quick else (SHAPES, args.reps)
    tok, fm = build_models()
    cfg = tok.config
    authors = (
        AuthorsCode(args.authors, tok.state_dict(), fm.state_dict(), cfg.n_out)
        if args.authors else None
    )
    with tempfile.TemporaryDirectory() as tmp:
        impl = Implementations(tok, fm, authors, Path(tmp), torch.get_num_threads())
    rate = measure_matmul_rate(clock=args.clock)
    print(f"\ntorch {torch.__version__}, {torch.get_num_threads()} thread(s), exact search "
          f"screen: {impl.api.search.screen}; fp32 matmul rate (1024^3 GEMM, median, same "
          f"run): {rate:.0f} GFLOP/s; {reps} windows per cell, run round-robin; "
          f"{args.clock} time; load average {os.getloadavg()[0]:.1f}.")
    baselines = ["authors' formulation"] + (["authors' code"] if authors else [])
    print("\n| shape | path | implementation | p50 ms | p99 ms | GFLOP/s | "
          + " | ".join(f"x vs {b}" for b in baselines) + " |")
    print("|---" * (6 + len(baselines)) + "|", flush=True)
    for n_ch, n_p in shapes:
        x, channels = window(n_ch, n_p)
        tokens = n_ch * n_p
        impl.api.search.stats.reset()
        for path, fns in impl.calls(x, channels).items():
            times = round_robin(fns, reps, clock=args.clock)
            p50 = {name: np.median(t) for name, t in times.items()}
            gflop = path_flops(path, tokens, cfg) / 1e9
            for name, t in times.items():
                ratios = " | ".join(f"{p50[b] / p50[name]:.2f}x" for b in baselines)
                print(f"| {n_ch}x{n_p} | {path} | {name} | {p50[name]:.1f} | "
                      f"{np.percentile(t, 99):.1f} | {gflop / p50[name] * 1e3:.1f} | {ratios} |",
                      flush=True)
        st = impl.api.search.stats
        print(f"| {n_ch}x{n_p} | exact search | fp32 fallback: {st.recomputed}/{st.blocks} row "
              f"blocks ({100 * st.fallback_rate:.1f} %), {st.uncertified}/{st.rows} rows "
              f"uncertified, {st.candidates / max(st.rows, 1):.1f} candidates/row | | | |"
              + " |" * len(baselines))
        print(f"| {n_ch}x{n_p} | tokens != fp32 search | {check_tokens(impl, x, channels)} "
              "| | | |" + " |" * len(baselines), flush=True)


def run_search_check(args: argparse.Namespace) -> None:
    """Exact search vs fp32 search over many random windows (tokenizer encoder included)."""
    tok, _ = build_models()
    n_ch, n_p = (int(v) for v in args.shape.split("x"))
    exact, fp32 = Tokenizer(tok, None), Tokenizer(tok, None, screen="none")
    channels = [ELECTRODES[i % len(ELECTRODES)] for i in range(n_ch)]
    rng = np.random.default_rng(args.seed)
    differing = windows = 0
    t_exact = t_fp32 = 0.0
    start = time.perf_counter()
    while windows < args.search_windows:
        b = min(args.batch, args.search_windows - windows)
        # EEG-like amplitudes, with a random per-window scale and a few spiky channels
        x = rng.standard_normal((b, n_ch, n_p * 200)) * rng.uniform(5, 50, (b, 1, 1))
        x[rng.random((b, n_ch)) < 0.05] *= 10
        w = exact.prepare(x.astype(np.float32), channels)
        with torch.inference_mode():
            feats = tok.encode_features(w.patches, w.spatial_ix, w.time_ix)
            t0 = time.perf_counter()
            codes, vectors = exact.search.quantize(feats)
            t1 = time.perf_counter()
            ref_codes, ref_vectors = fp32.search.quantize(feats)
            t2 = time.perf_counter()
        t_exact, t_fp32 = t_exact + t1 - t0, t_fp32 + t2 - t1
        differing += int((codes != ref_codes).sum()) + int(not torch.equal(vectors, ref_vectors))
        windows += b
        if windows % max(args.batch, args.search_windows // 20) < args.batch:
            st = exact.search.stats
            print(f"  {windows}/{args.search_windows} windows, {time.perf_counter() - start:.0f} s,"
                  f" differing {differing}, fallback blocks {st.recomputed}/{st.blocks}",
                  flush=True)
    st = exact.search.stats
    print(f"\nexact search ({exact.search.screen} screen) vs fp32 search, {windows} random "
          f"{n_ch}x{n_p} windows in batches of {args.batch}, {torch.get_num_threads()} "
          "thread(s):")
    print(f"  tokens and quantized vectors differing: {differing}")
    print(f"  searches (rows x levels x branches): {st.rows}; uncertified rows: "
          f"{st.uncertified} ({st.uncertified / st.rows:.2e})")
    print(f"  fp32 fallback: {st.recomputed} of {st.blocks} reference row blocks "
          f"({100 * st.fallback_rate:.2f} %); candidates re-scored per row: "
          f"{st.candidates / st.rows:.2f}")
    print(f"  search time: exact {t_exact:.1f} s, fp32 {t_fp32:.1f} s "
          f"({t_fp32 / t_exact:.2f}x)")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one shape, 3 repetitions")
    parser.add_argument("--reps", type=int, default=20, help="timed windows per cell")
    parser.add_argument("--threads", type=int, default=2, help="CPU threads (0: torch default)")
    parser.add_argument("--authors", metavar="PATH", help="clone of the authors' repository")
    parser.add_argument("--clock", choices=sorted(CLOCKS), default="wall",
                        help="wall: latency; cpu: CPU time of the calling thread (use with "
                        "--threads 1 on a shared machine: the work, without the waiting)")
    parser.add_argument("--search-windows", type=int, default=0, metavar="N",
                        help="instead of latency: check the exact search on N random windows")
    parser.add_argument("--shape", default="20x4", help="window shape for --search-windows")
    parser.add_argument("--batch", type=int, default=25, help="windows per batch there")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.clock == "cpu" and torch.get_num_threads() != 1:
        parser.error("--clock cpu measures one thread's CPU time: use it with --threads 1.")
    if args.search_windows:
        run_search_check(args)
    else:
        run_latency(args)


if __name__ == "__main__":
    main()
