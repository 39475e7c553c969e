"""ONNX export of the tokenize, decode and classify graphs, run in ONNX Runtime on CPU."""


import numpy as np
import onnx
import onnxruntime as ort
import pytest
from helpers import PARITY_CASES, PARITY_REF

from neurorvq_stream.engines._format import electrode_indices
from neurorvq_stream.engines.onnx_export import (
    CLASSIFY_OUTPUTS,
    DECODE_OUTPUTS,
    FORBIDDEN_OPS,
    TOKENIZE_OUTPUTS,
    export_classifier,
    export_decoder,
    export_tokenizer,
)

# Its module-scoped fixtures are built once: every test of the module on one xdist worker.
pytestmark = pytest.mark.xdist_group("engines/test_engine_onnx.py")


@pytest.fixture(scope="module")
def engines(tok, clf):
    return tok, clf


@pytest.fixture(scope="module")
def graphs(tmp_path_factory, engines):
    tok, clf = engines
    out = tmp_path_factory.mktemp("onnx")
    paths = {
        "tokenize": export_tokenizer(tok, out / "tokenize.onnx"),
        "decode": export_decoder(tok, out / "decode.onnx"),
        "classify": export_classifier(clf, out / "classify.onnx"),
    }
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    return {
        k: ort.InferenceSession(str(p), opts, providers=["CPUExecutionProvider"])
        for k, p in paths.items()
    } | {"paths": paths}


def test_graphs_valid_and_free_of_fft_onehot_loops(graphs):
    for path in graphs["paths"].values():
        model = onnx.load(str(path))
        onnx.checker.check_model(model, full_check=True)
        assert model.opset_import[0].version >= 17
        ops = {node.op_type for node in model.graph.node}
        assert not ops & FORBIDDEN_OPS, ops & FORBIDDEN_OPS
    outs = {
        k: [o.name for o in graphs[k].get_outputs()] for k in ("tokenize", "decode", "classify")
    }
    assert outs == {
        "tokenize": list(TOKENIZE_OUTPUTS),
        "decode": list(DECODE_OUTPUTS),
        "classify": list(CLASSIFY_OUTPUTS),
    }


@pytest.mark.parametrize("case", [PARITY_CASES[0], PARITY_CASES[2]],
                         ids=["20ch_4p_b2", "8ch_6p_b1"])
def test_onnx_matches_pytorch(graphs, engines, case):
    tok, clf = engines
    k, channels = case["case"], case["channels"]
    x = PARITY_REF[f"case{k}_x"]
    ix = electrode_indices(channels)
    tokens, quantized, mean, std = graphs["tokenize"].run(None, {"x": x, "channel_ix": ix})
    enc = tok.encode(x, channels)
    assert tokens.dtype == np.int64
    assert np.array_equal(tokens, enc["tokens"])
    assert np.array_equal(tokens, PARITY_REF[f"case{k}_tokens"])
    np.testing.assert_allclose(quantized, enc["quantized"], atol=1e-4, rtol=0)
    np.testing.assert_allclose(mean, enc["amplitude_mean"], atol=1e-4, rtol=0)
    np.testing.assert_allclose(std, enc["amplitude_std"], atol=1e-4, rtol=0)
    (rec,) = graphs["decode"].run(
        None,
        {"quantized": quantized, "channel_ix": ix, "amplitude_mean": mean, "amplitude_std": std},
    )
    np.testing.assert_allclose(
        rec, tok.reconstruct(x, channels)["reconstruction"], atol=1e-4, rtol=1e-5
    )
    (logits,) = graphs["classify"].run(None, {"x": x, "channel_ix": ix})
    np.testing.assert_allclose(logits, clf.logits(x, channels), atol=1e-4, rtol=0)


def test_export_rejects_old_opset(tmp_path, engines):
    with pytest.raises(ValueError, match="opset 16 is too old"):
        export_tokenizer(engines[0], tmp_path / "t.onnx", opset=16)
