"""Engine building: checkpoint -> ONNX (fp32, fp16) -> TensorRT, into the engine cache.

``neurorvq-stream build`` and ``python build_engine.py`` run this. Defaults: the shipped
models and the per-user engine cache. Every ONNX graph is checked with ``onnx.checker``
and run once in ONNX Runtime on CPU; ``--check`` also checks it statically against
TensorRT's ONNX parser support matrix. Without TensorRT or a GPU the ONNX part still runs
and the command says what it could not build. Exit status: 0 done, 1 a check failed, 2
bad arguments or inputs.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from neurorvq_stream.engines import NeuroRVQConfig


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("build", help="export ONNX graphs and build TensorRT engines ahead "
                       "of a run (cached)")
    add_arguments(p)
    p.set_defaults(handler=run)


def _shape(text: str) -> tuple[int, int]:
    try:
        channels, patches = (int(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected CHANNELS,PATCHES such as 64,4; got {text!r}"
        ) from None
    if channels < 1 or patches < 1:
        raise argparse.ArgumentTypeError(f"channels and patches must be >= 1; got {text!r}")
    return channels, patches


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of the engine build, shared by ``build_engine.py`` and ``neurorvq-stream build``."""
    parser.add_argument("--tokenizer", type=Path, help="tokenizer checkpoint (.pt/.safetensors)")
    parser.add_argument("--classifier", type=Path, help="fine-tuned classifier checkpoint")
    parser.add_argument("--output", type=Path, default=None,
                        help="cache folder (default: the per-user engine cache)")
    parser.add_argument("--check", action="store_true",
                        help="statically check the graphs against TensorRT's ONNX support list")
    parser.add_argument("--fp16", action="store_true",
                        help="also export fp16 ONNX and build fp16 engines (GPUs)")
    parser.add_argument("--min", type=_shape, default=(1, 1), metavar="C,A",
                        help="smallest channels,patches of the optimization profile (1,1)")
    parser.add_argument("--opt", type=_shape, default=(64, 4), metavar="C,A",
                        help="channels,patches TensorRT tunes for (64,4)")
    parser.add_argument("--max", type=_shape, default=(128, 16), metavar="C,A",
                        help="largest channels,patches of the optimization profile (128,16)")
    parser.add_argument("--workspace-gb", type=float, default=2.0,
                        help="TensorRT builder workspace limit in GiB (2)")


def _check_args(args: argparse.Namespace) -> None:
    """Default models and a consistent profile; a clear ValueError otherwise."""
    from neurorvq_stream.engines import shipped_model
    from neurorvq_stream.engines._checkpoint import shipped_models_dir

    if args.tokenizer is None and args.classifier is None:
        args.tokenizer, args.classifier = shipped_model("tokenizer"), shipped_model("classifier")
        if args.tokenizer is None and args.classifier is None:
            raise ValueError(f"No --tokenizer/--classifier given and no default models shipped "
                             f"in {shipped_models_dir()}; pass the paths.")
    for what in ("tokenizer", "classifier"):
        path = getattr(args, what)
        if path is not None and not path.is_file():
            raise FileNotFoundError(f"The {what} checkpoint {str(path)!r} does not exist.")
    for i, name in enumerate(("channels", "patches")):
        lo, opt, hi = args.min[i], args.opt[i], args.max[i]
        if not lo <= opt <= hi:
            raise ValueError(f"Profile {name} must satisfy --min <= --opt <= --max; got {lo}, "
                             f"{opt}, {hi}.")


def smoke_run(folders: list[Path], config: NeuroRVQConfig, opt: tuple[int, int]) -> str:
    """Run the graphs once in ONNX Runtime on CPU: proof they load and execute."""
    from neurorvq_stream.engines import ELECTRODES
    from neurorvq_stream.engines.backends._export import GRAPH_FILES
    from neurorvq_stream.engines.backends._graph import GraphEngine
    from neurorvq_stream.engines.backends._onnxruntime import OrtGraph

    graphs = {
        stage: OrtGraph(folder / name, "cpu", threads=1)
        for folder in folders for stage, name in GRAPH_FILES.items()
        if (folder / name).is_file()
    }
    engine = GraphEngine(graphs, config, name="onnxruntime-cpu", precision="check")
    engine.load()
    channels = [ELECTRODES[i % len(ELECTRODES)] for i in range(min(opt[0], len(ELECTRODES)))]
    import numpy as np

    x = np.random.default_rng(0).normal(0, 20, (len(channels), opt[1] * config.patch_size))
    out = engine.run(x.astype(np.float32), channels)
    parts = []
    if out.tokens is not None:
        parts.append(f"tokens {out.tokens.shape}, reconstruction {out.reconstruction.shape}")
    if out.logits is not None:
        parts.append(f"logits {out.logits.shape}")
    return ", ".join(parts)


def run(args: argparse.Namespace) -> int:
    """Export, check and (where TensorRT runs) compile; 1 when a check failed."""
    _check_args(args)
    # Cache hits and rebuilds (with their reasons) are what this command reports.
    logging.getLogger("neurorvq_stream.engines").setLevel(logging.INFO)
    import onnx
    from tqdm import tqdm

    from neurorvq_stream.engines.backends import (
        compile_engines,
        export_graphs,
        tensorrt_unavailable_reason,
    )
    from neurorvq_stream.engines.backends._cache import EngineCache
    from neurorvq_stream.engines.backends._export import GRAPH_FILES
    from neurorvq_stream.engines.backends._tensorrt import graph_profile
    from neurorvq_stream.engines.backends._trt_check import check_onnx_for_tensorrt

    cache = EngineCache(args.output)
    channels = (args.min[0], args.opt[0], args.max[0])
    patches = (args.min[1], args.opt[1], args.max[1])
    precisions = ["fp32", "fp16"] if args.fp16 else ["fp32"]
    failed = False
    for precision in tqdm(precisions, desc="ONNX export", unit="precision"):
        folders, config = export_graphs(cache, args.tokenizer, args.classifier, precision)
        for folder in folders:
            for stage, name in GRAPH_FILES.items():
                path = folder / name
                if not path.is_file():
                    continue
                onnx.checker.check_model(str(path))
                tqdm.write(f"[ok] {precision} {stage}: {path} passes onnx.checker")
                if args.check:
                    profile = graph_profile(stage, config, channels, patches)
                    issues = check_onnx_for_tensorrt(path, profile)
                    errors = [i for i in issues if i.severity == "error"]
                    failed |= bool(errors)
                    for issue in issues:
                        tqdm.write(f"    {issue}")
                    status = "FAIL" if errors else "ok"
                    tqdm.write(f"[{status}] {precision} {stage}: TensorRT static check, "
                               f"{len(errors)} error(s), {len(issues) - len(errors)} warning(s)")
        tqdm.write(f"[ok] {precision} ONNX Runtime CPU run: {smoke_run(folders, config, args.opt)}")

    reason = tensorrt_unavailable_reason()
    if reason is not None:
        tqdm.write(
            f"[skipped] TensorRT engines were NOT built: {reason}. The ONNX graphs above are "
            f"ready in {args.output}; run this script on a machine with an NVIDIA GPU and "
            "TensorRT 10/11 to compile them (ONNX Runtime and PyTorch run without it)."
        )
        return 1 if failed else 0
    for precision in precisions:
        engines, _, _ = compile_engines(
            cache, args.tokenizer, args.classifier, precision=precision,
            channels=channels, patches=patches,
            workspace_bytes=int(args.workspace_gb * (1 << 30)),
        )
        for stage, path in engines.items():
            tqdm.write(f"[ok] TensorRT {precision} {stage}: {path} (metadata: "
                       f"{path.parent / 'metadata.json'})")
    return 1 if failed else 0
