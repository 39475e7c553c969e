"""Checkpoint -> ONNX graphs (fp32, or fp16 for GPUs), kept in the engine cache.

The graphs come from :mod:`engines.onnx_export`; this module only decides when an export
is still valid (same checkpoint bytes, precision, opset, torch/onnx versions) and converts
to half precision, which TensorRT 11 needs because its networks take precision from the
ONNX types.
"""

from __future__ import annotations

import json
from pathlib import Path

import onnx

from .._api import load_classifier, load_tokenizer
from .._checkpoint import sidecar_path
from .._config import NeuroRVQConfig
from ..onnx_export import export_classifier, export_decoder, export_tokenizer
from ._cache import CacheKey, EngineCache, file_sha256, library_versions

GRAPH_FILES = {"tokenize": "tokenize.onnx", "decode": "decode.onnx", "classify": "classify.onnx"}
OPSET = 17
PRECISIONS = ("fp32", "fp16", "bf16")


def to_fp16(path: Path) -> None:
    """Rewrite an fp32 graph in place with fp16 weights and math, fp32 inputs/outputs kept.

    Uses ONNX Runtime's converter (shipped with onnxruntime); the ArgMin of the quantizer then
    compares fp16 distances, so tokens may differ where two codes are nearly equidistant.
    """
    from onnxruntime.transformers.float16 import convert_float_to_float16
    from onnxruntime.transformers.onnx_model import OnnxModel

    model = convert_float_to_float16(onnx.load(str(path)), keep_io_types=True)
    wrapper = OnnxModel(model)
    wrapper.topological_sort()  # the converter appends its input casts at the end
    model = wrapper.model
    onnx.checker.check_model(model)
    onnx.save(model, str(path))


def export_key(kind: str, checkpoint: Path, precision: str) -> CacheKey:
    """Key of an export: which file (by content), which precision, which exporter versions."""
    side = sidecar_path(checkpoint)  # class names come from it: renamed classes re-export
    return CacheKey(
        name=f"{kind}-onnx",
        checkpoint_sha256=file_sha256(checkpoint),
        precision=precision,
        shapes={
            "opset": OPSET,
            "dynamic": ["batch", "channels", "samples"],
            "sidecar_sha256": file_sha256(side) if side.is_file() else None,
        },
        versions=library_versions(),
    )


def _config_of(folder: Path) -> NeuroRVQConfig:
    fields = json.loads((folder / "metadata.json").read_text())["config"]
    return NeuroRVQConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in fields.items()})


def export_class_names(folders: list[Path]) -> tuple[str, ...]:
    """Class names recorded with the classifier export (no checkpoint load on a cache hit)."""
    for folder in folders:
        names = json.loads((folder / "metadata.json").read_text()).get("class_names")
        if names:
            return tuple(names)
    return ()


def export_graphs(
    cache: EngineCache,
    tokenizer: Path | None,
    classifier: Path | None,
    precision: str = "fp32",
) -> tuple[list[Path], NeuroRVQConfig]:
    """Cache folders holding the graphs of each given checkpoint, and the model config.

    fp32 graphs are exported for fp32 and bf16 (ONNX Runtime and TensorRT 10 choose reduced
    precision themselves); fp16 graphs are converted after export.
    """
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}.")
    graph_precision = "fp16" if precision == "fp16" else "fp32"
    folders: list[Path] = []

    def build_tokenizer(folder: Path) -> dict[str, object]:
        tok = load_tokenizer(tokenizer)
        export_tokenizer(tok, folder / GRAPH_FILES["tokenize"], OPSET)
        export_decoder(tok, folder / GRAPH_FILES["decode"], OPSET)
        if graph_precision == "fp16":
            to_fp16(folder / GRAPH_FILES["tokenize"])
            to_fp16(folder / GRAPH_FILES["decode"])
        return {"config": tok.config.to_dict(), "checkpoint": str(tokenizer)}

    def build_classifier(folder: Path) -> dict[str, object]:
        clf = load_classifier(classifier)
        export_classifier(clf, folder / GRAPH_FILES["classify"], OPSET)
        if graph_precision == "fp16":
            to_fp16(folder / GRAPH_FILES["classify"])
        return {"config": clf.config.to_dict(), "checkpoint": str(classifier),
                "class_names": list(clf.class_names)}

    for kind, path, build in (
        ("tokenizer", tokenizer, build_tokenizer),
        ("classifier", classifier, build_classifier),
    ):
        if path is not None:
            folders.append(cache.get_or_build(export_key(kind, path, graph_precision), build))
    if not folders:
        raise ValueError("Give a tokenizer checkpoint, a classifier checkpoint, or both.")
    return folders, _config_of(folders[0])
