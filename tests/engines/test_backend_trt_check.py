"""Static TensorRT-compatibility check on hand-built graphs (the exported ones: parity test)."""

import onnx
import pytest
from onnx import TensorProto, helper

from neurorvq_stream.engines.backends._trt_check import check_onnx_for_tensorrt, support_matrix


def _model(nodes, inputs, outputs, initializers=(), opset=17):
    graph = helper.make_graph(nodes, "g", inputs, outputs, initializer=list(initializers))
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    onnx.checker.check_model(model)
    return model


def _io(name, elem=TensorProto.FLOAT, shape=("n", 200)):
    return helper.make_tensor_value_info(name, elem, list(shape))


PROFILE = {"x": ((1, 200), (4, 200), (16, 200))}


def test_matrix_cites_its_source():
    m = support_matrix()
    assert "onnx-tensorrt" in m["source"] and m["tensorrt_version"] and m["source_date"]
    assert "MatMul" in m["operators"] and "DFT" in m["unsupported"]


def test_supported_graph_passes():
    model = _model(
        [helper.make_node("Relu", ["x"], ["h"]), helper.make_node("Softmax", ["h"], ["y"])],
        [_io("x")], [_io("y")],
    )
    assert check_onnx_for_tensorrt(model, PROFILE) == []


@pytest.mark.parametrize("op", ["DFT", "Unique", "NonExistingOp"])
def test_unsupported_operator_flagged(op):
    model = helper.make_model(
        helper.make_graph([helper.make_node(op, ["x"], ["y"])], "g", [_io("x")], [_io("y")]),
        opset_imports=[helper.make_opsetid("", 17)],
    )
    issues = check_onnx_for_tensorrt(model, PROFILE)
    assert [i.severity for i in issues] == ["error"]
    assert op in issues[0].message and op in issues[0].where


def test_nested_subgraph_is_checked():
    then = helper.make_graph([helper.make_node("DFT", ["x"], ["a"])], "then", [], [_io("a")])
    other = helper.make_graph([helper.make_node("Relu", ["x"], ["b"])], "else", [], [_io("b")])
    cond = helper.make_tensor_value_info("c", TensorProto.BOOL, [])
    node = helper.make_node("If", ["c"], ["y"], then_branch=then, else_branch=other)
    model = helper.make_model(
        helper.make_graph([node], "g", [cond, _io("x")], [_io("y")]),
        opset_imports=[helper.make_opsetid("", 17)],
    )
    issues = check_onnx_for_tensorrt(model, {**PROFILE})
    assert any("DFT" in i.message and "> node" in i.where for i in issues)


def test_types_flagged():
    # MatMul on int64 (TensorRT has no integer MatMul) and a double input.
    model = _model(
        [helper.make_node("MatMul", ["i", "i"], ["y"]), helper.make_node("Relu", ["d"], ["z"])],
        [_io("i", TensorProto.INT64, (4, 4)), _io("d", TensorProto.DOUBLE, (4,))],
        [_io("y", TensorProto.INT64, (4, 4)), _io("z", TensorProto.DOUBLE, (4,))],
    )
    issues = check_onnx_for_tensorrt(model)
    text = "\n".join(map(str, issues))
    assert "INT64" in text and "int32" in text
    assert "double" in text


def test_dynamic_input_needs_profile():
    model = _model([helper.make_node("Relu", ["x"], ["y"])], [_io("x")], [_io("y")])
    issues = check_onnx_for_tensorrt(model, profile=None)
    assert len(issues) == 1 and "'n'" in issues[0].message and "profile" in issues[0].message
    bad = check_onnx_for_tensorrt(model, {"x": ((1, 200), (4, 199), (16, 200))})
    assert len(bad) == 1 and "does not fit" in bad[0].message


def test_reduce_axes_must_be_constant():
    axes = helper.make_tensor_value_info("axes", TensorProto.INT64, [1])
    model = _model(
        [helper.make_node("ReduceSum", ["x", "axes"], ["y"])],
        [_io("x"), axes], [_io("y", shape=("m",))],
    )
    issues = check_onnx_for_tensorrt(model, {**PROFILE, "axes": ((1,), (1,), (1,))})
    assert any("build-time constant" in i.message for i in issues)


def test_opset_out_of_range():
    model = _model([helper.make_node("Relu", ["x"], ["y"])], [_io("x")], [_io("y")], opset=8)
    issues = check_onnx_for_tensorrt(model, PROFILE)
    assert any("opset 8" in i.message for i in issues)
