"""Static check that an ONNX graph is one TensorRT's ONNX parser can take.

Building a TensorRT engine needs the GPU machine; finding out there that an exported graph
uses an operator or a type the parser rejects wastes a deployment. This check reads the
support matrix kept in ``tensorrt_onnx_ops.json`` (transcribed from onnx-tensorrt's
``docs/operators.md``, version and date inside) and runs on any CPU machine.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import onnx
from onnx import TensorProto

OPS_FILE = Path(__file__).with_name("tensorrt_onnx_ops.json")

# ONNX element type -> the names the support matrix uses.
_TYPE_NAMES = {
    TensorProto.FLOAT: "FP32",
    TensorProto.FLOAT16: "FP16",
    TensorProto.BFLOAT16: "BF16",
    TensorProto.INT32: "INT32",
    TensorProto.INT64: "INT64",
    TensorProto.INT8: "INT8",
    TensorProto.UINT8: "UINT8",
    TensorProto.BOOL: "BOOL",
    TensorProto.DOUBLE: "DOUBLE",
    TensorProto.FLOAT8E4M3FN: "FP8",
}
# Inputs that the matrix says must be constants at build time, per operator.
_CONSTANT_INPUTS = {
    **{op: 1 for op in (
        "ReduceL1", "ReduceL2", "ReduceLogSum", "ReduceLogSumExp", "ReduceMax", "ReduceMean",
        "ReduceMin", "ReduceProd", "ReduceSum", "ReduceSumSquare",
    )},
    "CumSum": 1,
    "TopK": 1,
}


@dataclass(frozen=True)
class CheckIssue:
    """One finding; ``severity`` is "error" (the parser or builder will fail) or "warning"."""

    severity: str
    where: str
    message: str

    def __str__(self) -> str:
        return f"[{self.severity}] {self.where}: {self.message}"


@cache
def support_matrix() -> dict:
    """The operator support matrix kept in the repository (with its source and version)."""
    return json.loads(OPS_FILE.read_text())


def _walk(graph: onnx.GraphProto, prefix: str = "") -> Iterator[tuple[str, onnx.NodeProto]]:
    """Every node, including those inside If/Loop/Scan bodies."""
    for i, node in enumerate(graph.node):
        where = f"{prefix}node {i} '{node.name or node.output[0]}' ({node.op_type})"
        yield where, node
        for attr in node.attribute:
            if attr.type == onnx.AttributeProto.GRAPH:
                yield from _walk(attr.g, where + " > ")
            for sub in attr.graphs:
                yield from _walk(sub, where + " > ")


def _value_types(model: onnx.ModelProto) -> dict[str, int]:
    """Element type of every named tensor the shape inference can resolve."""
    try:
        inferred = onnx.shape_inference.infer_shapes(model)
    except Exception:  # inference is best effort: unknown ops must not hide the op check
        inferred = model
    graph = inferred.graph
    types = {t.name: t.data_type for t in graph.initializer}
    for vi in (*graph.input, *graph.output, *graph.value_info):
        if vi.type.HasField("tensor_type"):
            types[vi.name] = vi.type.tensor_type.elem_type
    return types


def _constants(graph: onnx.GraphProto) -> set[str]:
    names = {t.name for t in graph.initializer}
    names.update(o for n in graph.node if n.op_type == "Constant" for o in n.output)
    return names


def check_onnx_for_tensorrt(
    model: onnx.ModelProto | str | Path,
    profile: Mapping[str, tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]]] | None = None,
) -> list[CheckIssue]:
    """Operators, types and shapes of ``model`` that TensorRT's ONNX parser would reject.

    ``profile`` maps each input name to its (min, opt, max) shape; an input with a dynamic
    dimension and no profile entry, or whose profile does not fit its rank, is an error,
    because the builder cannot make an engine for it.
    """
    if not isinstance(model, onnx.ModelProto):
        model = onnx.load(str(model), load_external_data=False)
    matrix = support_matrix()
    ops: dict[str, dict] = matrix["operators"]
    unsupported = set(matrix["unsupported"])
    issues: list[CheckIssue] = []

    for imp in model.opset_import:
        if imp.domain in ("", "ai.onnx") and not (
            matrix["opset_min"] <= imp.version <= matrix["opset_max"]
        ):
            issues.append(CheckIssue(
                "error", "model",
                f"opset {imp.version} is outside TensorRT {matrix['tensorrt_version']}'s range "
                f"{matrix['opset_min']}-{matrix['opset_max']}; re-export with a supported opset.",
            ))

    types = _value_types(model)
    constants = _constants(model.graph)
    for where, node in _walk(model.graph):
        if node.domain not in ("", "ai.onnx"):
            issues.append(CheckIssue(
                "error", where,
                f"operator from custom domain '{node.domain}' needs a TensorRT plugin; "
                "export with standard ONNX operators only.",
            ))
            continue
        spec = ops.get(node.op_type)
        if spec is None:
            why = "is unsupported" if node.op_type in unsupported else "is not in the matrix"
            issues.append(CheckIssue(
                "error", where,
                f"{node.op_type} {why} in TensorRT {matrix['tensorrt_version']}'s ONNX parser; "
                "rewrite it with supported operators (see tensorrt_onnx_ops.json).",
            ))
            continue
        allowed = set(spec["types"])
        checked = list(node.input[:1]) if node.op_type != "Cast" else []
        for name in checked:
            elem = types.get(name)
            if elem is None:
                continue
            tname = _TYPE_NAMES.get(elem, TensorProto.DataType.Name(elem))
            if tname == "DOUBLE":
                issues.append(CheckIssue(
                    "warning", where,
                    f"input '{name}' is double; TensorRT casts it to float with clamping. "
                    "Export in float32.",
                ))
            elif tname not in allowed:
                hint = " Cast int64 to int32 before it." if tname == "INT64" else ""
                issues.append(CheckIssue(
                    "error", where,
                    f"input '{name}' has type {tname}; {node.op_type} supports "
                    f"{', '.join(spec['types'])}.{hint}",
                ))
        if node.op_type == "Cast":
            to = next((a.i for a in node.attribute if a.name == "to"), None)
            tname = _TYPE_NAMES.get(to, TensorProto.DataType.Name(to)) if to else "?"
            if tname not in allowed:
                issues.append(CheckIssue(
                    "error", where, f"Cast to {tname} is not supported by TensorRT."
                ))
        pos = _CONSTANT_INPUTS.get(node.op_type)
        if (
            pos is not None
            and len(node.input) > pos
            and node.input[pos]
            and node.input[pos] not in constants
        ):
            issues.append(CheckIssue(
                "error", where,
                f"input {pos} ('{node.input[pos]}') must be a build-time constant for "
                f"TensorRT ({spec.get('restrictions', 'see the support matrix')}).",
            ))

    initializers = {t.name for t in model.graph.initializer}
    for vi in model.graph.input:
        if vi.name in initializers:
            continue
        ttype = vi.type.tensor_type
        elem = _TYPE_NAMES.get(ttype.elem_type, TensorProto.DataType.Name(ttype.elem_type))
        if elem not in {"FP32", "FP16", "BF16", "INT32", "INT64", "UINT8", "BOOL"}:
            issues.append(CheckIssue(
                "error", f"input '{vi.name}'", f"type {elem} cannot be a TensorRT network input."
            ))
        dims = ttype.shape.dim
        dynamic = [i for i, d in enumerate(dims) if not d.HasField("dim_value")]
        if not dynamic:
            continue
        if profile is None or vi.name not in profile:
            labels = [dims[i].dim_param or "?" for i in dynamic]
            issues.append(CheckIssue(
                "error", f"input '{vi.name}'",
                f"dynamic dimension(s) {labels} have no optimization profile; give min/opt/max "
                "shapes for this input.",
            ))
            continue
        for shape in profile[vi.name]:
            if len(shape) != len(dims) or any(
                d.HasField("dim_value") and d.dim_value != n
                for d, n in zip(dims, shape, strict=False)
            ):
                issues.append(CheckIssue(
                    "error", f"input '{vi.name}'",
                    f"profile shape {tuple(shape)} does not fit the input's shape "
                    f"{[d.dim_value if d.HasField('dim_value') else d.dim_param for d in dims]}.",
                ))
                break
    return issues
