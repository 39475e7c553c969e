"""Every backend available here gives the same tokens and (fp32) floats within 1e-4.

Runs on the authors' parity fixtures and on v1-size random weights (small channel count).
PyTorch is the reference; ONNX Runtime (CPU, and CUDA where present) and TensorRT (where
installed with a GPU) are compared to it. Floats: |a - b| <= 1e-4 * max(1, max|ref|), i.e.
1e-4 absolute for logits and 1e-4 relative to the window's scale for microvolts.
"""


import numpy as np
import pytest
import torch
from helpers import PARITY_CASES, PARITY_DIR, PARITY_REF

from neurorvq_stream.engines import ELECTRODES, NeuroRVQConfig
from neurorvq_stream.engines._checkpoint import save_checkpoint
from neurorvq_stream.engines._tokenizer import NeuroRVQTokenizer
from neurorvq_stream.engines.backends import (
    create_engine,
    export_graphs,
    tensorrt_unavailable_reason,
)
from neurorvq_stream.engines.backends._cache import EngineCache

# Its module-scoped fixtures are built once: every test of the module on one xdist worker.
pytestmark = pytest.mark.xdist_group("engines/test_backend_parity.py")

TOKENIZER = PARITY_DIR / "tokenizer.pt"
CLASSIFIER = PARITY_DIR / "foundation_model.pt"


def _backends():
    params = [pytest.param(("pytorch", "cpu"), id="pytorch-cpu"),
              pytest.param(("onnxruntime", "cpu"), id="onnxruntime-cpu")]
    import onnxruntime as ort

    cuda_ort = "CUDAExecutionProvider" in ort.get_available_providers()
    params.append(pytest.param(("onnxruntime", "cuda"), id="onnxruntime-cuda", marks=(
        pytest.mark.skipif(not cuda_ort, reason="onnxruntime has no CUDAExecutionProvider"))))
    params.append(pytest.param(("pytorch", "cuda"), id="pytorch-cuda", marks=(
        pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA GPU"))))
    reason = tensorrt_unavailable_reason()
    params.append(pytest.param(("tensorrt", "cuda"), id="tensorrt", marks=(
        pytest.mark.skipif(reason is not None, reason=f"TensorRT unavailable: {reason}"))))
    return params


def _close(a, b):
    return np.abs(a - b).max() <= 1e-4 * max(1.0, float(np.abs(b).max()))


def _zscore(signal):
    flat = signal.reshape(-1)
    return (signal - flat.mean()) / flat.std(ddof=1)


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("engines_cache")


@pytest.fixture(scope="module")
def reference(cache):
    return create_engine(TOKENIZER, CLASSIFIER, backend="pytorch", device="cpu", cache_dir=cache)


@pytest.fixture(scope="module")
def reference_outputs(reference):
    """PyTorch CPU outputs of every fixture window, computed once for all backends."""
    return {
        (case["case"], b): reference.run(PARITY_REF[f"case{case['case']}_x"][b], case["channels"])
        for case in PARITY_CASES for b in range(case["batch"])
    }


@pytest.mark.parametrize("backend", _backends())
def test_fixture_parity(backend, cache, reference, reference_outputs):
    name, device = backend
    if (name, device) == ("pytorch", "cpu"):
        engine = reference
    else:
        engine = create_engine(TOKENIZER, CLASSIFIER, backend=name, device=device,
                               cache_dir=cache)
    assert engine.describe().startswith(engine.name)
    for case in PARITY_CASES:
        k, channels = case["case"], case["channels"]
        x = PARITY_REF[f"case{k}_x"]
        for b in range(case["batch"]):
            out = engine.run(x[b], channels)
            ref = reference_outputs[(k, b)]
            # The authors' outputs, then the PyTorch reference backend.
            np.testing.assert_array_equal(out.tokens, PARITY_REF[f"case{k}_tokens"][:, :, b])
            assert np.abs(out.logits - PARITY_REF[f"case{k}_logits"][b]).max() <= 1e-4
            std_rec = _zscore(out.reconstruction.reshape(-1, 200))
            assert np.abs(std_rec - PARITY_REF[f"case{k}_std_reconstruction"][b]).max() <= 1e-3
            np.testing.assert_array_equal(out.tokens, ref.tokens)
            assert _close(out.reconstruction, ref.reconstruction)
            assert _close(out.logits, ref.logits)
            assert _close(out.probabilities, ref.probabilities)
            assert out.class_names == ref.class_names and len(out.class_names) == 4
            assert set(out.timings) == {"tokenize", "reconstruct", "classify"}


@pytest.fixture(scope="module")
def v1_tokenizer(tmp_path_factory):
    """v1-size tokenizer (12/3 blocks, 8192 x 128 codes) with seeded random weights."""
    torch.manual_seed(7)
    model = NeuroRVQTokenizer(NeuroRVQConfig())
    path = tmp_path_factory.mktemp("v1") / "v1_tokenizer.safetensors"
    return save_checkpoint(model, path)


@pytest.fixture(scope="module")
def v1_reference(cache, v1_tokenizer):
    return create_engine(v1_tokenizer, None, backend="pytorch", device="cpu", cache_dir=cache)


@pytest.mark.slow
@pytest.mark.parametrize("backend", _backends()[1:])  # all but the PyTorch CPU reference
def test_v1_size_parity(backend, cache, v1_tokenizer, v1_reference):
    name, device = backend
    ref = v1_reference
    engine = create_engine(v1_tokenizer, None, backend=name, device=device, cache_dir=cache)
    rng = np.random.default_rng(3)
    channels = list(ELECTRODES[10:16])
    for n_patches in (1, 3):
        x = rng.normal(0, 25, (len(channels), n_patches * 200)).astype(np.float32)
        a, b = engine.run(x, channels), ref.run(x, channels)
        assert a.tokens.shape == (4, 8, len(channels) * n_patches)
        np.testing.assert_array_equal(a.tokens, b.tokens)
        assert _close(a.reconstruction, b.reconstruction)
        assert a.logits is None and a.probabilities is None and "classify" not in a.timings


@pytest.mark.slow
def test_fp16_graphs_agree_within_stated_tolerance(cache, reference_outputs):
    """fp16 graphs (what TensorRT 11 compiles) run in ONNX Runtime CPU against fp32 PyTorch.

    Stated fp16 tolerance: >= 95% identical tokens (a flip needs two codes within fp16
    rounding), logits within 1e-2, probabilities within 1e-2.
    """
    from neurorvq_stream.engines.backends._export import GRAPH_FILES
    from neurorvq_stream.engines.backends._graph import GraphEngine
    from neurorvq_stream.engines.backends._onnxruntime import OrtGraph

    folders, config = export_graphs(EngineCache(cache), TOKENIZER, CLASSIFIER, "fp16")
    graphs = {stage: OrtGraph(folder / name) for folder in folders
              for stage, name in GRAPH_FILES.items() if (folder / name).is_file()}
    engine = GraphEngine(graphs, config, name="onnxruntime-cpu", precision="fp16")
    engine.load()
    for case in PARITY_CASES:
        x, channels = PARITY_REF[f"case{case['case']}_x"][0], case["channels"]
        a, b = engine.run(x, channels), reference_outputs[(case["case"], 0)]
        assert (a.tokens == b.tokens).mean() >= 0.95
        assert np.abs(a.logits - b.logits).max() <= 1e-2
        assert np.abs(a.probabilities - b.probabilities).max() <= 1e-2


def test_export_cache_reused_and_static_check_clean(cache):
    """The exported graphs (what TensorRT would parse) pass the static TensorRT check."""
    from neurorvq_stream.engines.backends._export import GRAPH_FILES
    from neurorvq_stream.engines.backends._tensorrt import graph_profile
    from neurorvq_stream.engines.backends._trt_check import check_onnx_for_tensorrt

    folders, config = export_graphs(EngineCache(cache), TOKENIZER, CLASSIFIER)
    again, _ = export_graphs(EngineCache(cache), TOKENIZER, CLASSIFIER)
    assert folders == again
    checked = 0
    for folder in folders:
        for stage, fname in GRAPH_FILES.items():
            if (folder / fname).is_file():
                issues = check_onnx_for_tensorrt(folder / fname, graph_profile(stage, config))
                assert [i for i in issues if i.severity == "error"] == [], issues
                checked += 1
    assert checked == 3


def test_auto_picks_and_explains(cache):
    engine = create_engine(TOKENIZER, CLASSIFIER, backend="auto", cache_dir=cache)
    text = engine.describe()
    assert "auto" in text and engine.name in text
    if tensorrt_unavailable_reason() is not None:
        assert "TensorRT" in engine.selection_reason
    if not torch.cuda.is_available():
        assert engine.name == "onnxruntime-cpu"
    cpu = create_engine(TOKENIZER, None, backend="auto", device="cpu", cache_dir=cache)
    assert cpu.name == "onnxruntime-cpu" and "device='cpu'" in cpu.selection_reason


@pytest.mark.parametrize("backend", ["pytorch", "onnxruntime"])
def test_single_model_and_bad_input(backend, cache):
    clf_only = create_engine(None, CLASSIFIER, backend=backend, cache_dir=cache)
    channels = PARITY_CASES[1]["channels"]
    x = PARITY_REF["case1_x"][0]
    clf_only.warmup(channels, n_patches=1)
    out = clf_only.run(x, channels)
    assert out.tokens is None and out.reconstruction is None
    assert out.probabilities.shape == (4,) and abs(out.probabilities.sum() - 1) < 1e-5
    tok_only = create_engine(TOKENIZER, None, backend=backend, cache_dir=cache)
    out = tok_only.run(x, channels, reconstruct=False)
    assert out.reconstruction is None and "reconstruct" not in out.timings
    assert out.tokens.dtype == np.int64
    with pytest.raises(ValueError, match="multiple of the 200"):
        tok_only.run(x[:, :150], channels)
    with pytest.raises(ValueError, match="one window"):
        tok_only.run(x[None], channels)
    with pytest.raises(ValueError, match="not NeuroRVQ electrodes"):
        tok_only.run(x, ["c3", "cz", "xyz"])
    bad = x.copy()
    bad[1, 5] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        tok_only.run(bad, channels)


def test_create_engine_argument_errors(tmp_path):
    with pytest.raises(ValueError, match="or both"):
        create_engine(None, None)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        create_engine(tmp_path / "missing.pt", None)
    with pytest.raises(ValueError, match="Unknown backend"):
        create_engine(TOKENIZER, None, backend="tvm")
    with pytest.raises(ValueError, match="CUDA"):
        create_engine(TOKENIZER, None, backend="pytorch", device="cpu", precision="fp16")
