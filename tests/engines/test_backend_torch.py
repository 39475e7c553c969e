"""PyTorch backend: guards, IEEE fp32 around engine calls, the CPU bf16 mode; autocast and
CUDA graphs where a GPU exists."""


import numpy as np
import pytest
import torch
from helpers import PARITY_CASES, PARITY_DIR, PARITY_REF

from neurorvq_stream.engines import ELECTRODES, load_classifier, load_tokenizer
from neurorvq_stream.engines.backends import create_engine
from neurorvq_stream.engines.backends._torch import TorchEngine

TOKENIZER = PARITY_DIR / "tokenizer.pt"
needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA GPU")


def test_guards_name_the_problem():
    tok = load_tokenizer(TOKENIZER).module
    with pytest.raises(ValueError, match="precision must be one of"):
        TorchEngine(tok, None, precision="int8")
    with pytest.raises(ValueError, match="for CUDA"):
        TorchEngine(tok, None, device="cpu", precision="fp16")
    with pytest.raises(ValueError, match="cuda_graphs=True needs device='cuda'"):
        TorchEngine(tok, None, device="cpu", cuda_graphs=True)
    if not torch.cuda.is_available():
        with pytest.raises(RuntimeError, match="sees no CUDA GPU"):
            TorchEngine(tok, None, device="cuda")
    engine = TorchEngine(tok, None)
    with pytest.raises(RuntimeError, match="call load"):
        engine.run(np.zeros((1, 200), np.float32), ["cz"])


def test_inference_changes_no_state():
    tok = load_tokenizer(TOKENIZER).module
    before = {k: v.clone() for k, v in tok.state_dict().items()}
    engine = TorchEngine(tok, None)
    engine.load()
    engine.warmup(["cz", "pz"], n_patches=2)
    after = tok.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert "pytorch-cpu fp32" in engine.describe() and "tokenizer" in engine.describe()


@needs_cuda
@pytest.mark.parametrize("precision", ["fp32", "bf16", "fp16"])
def test_cuda_autocast_and_graphs(precision, tmp_path):
    ref = create_engine(TOKENIZER, None, backend="pytorch", device="cpu", cache_dir=tmp_path)
    gpu = create_engine(TOKENIZER, None, backend="pytorch", device="cuda",
                        precision=precision, cache_dir=tmp_path)
    assert gpu.cuda_graphs
    channels = list(ELECTRODES[:20])
    x = (np.random.default_rng(2).standard_normal((20, 800)) * 20).astype(np.float32)
    gpu.warmup(channels, 4)
    a, b = gpu.run(x, channels), ref.run(x, channels)
    gpu.cuda_graphs = False
    eager = gpu.run(x, channels)
    np.testing.assert_array_equal(a.tokens, eager.tokens)  # replay == eager
    agreement = (a.tokens == b.tokens).mean()
    scale = np.abs(b.reconstruction).max()
    if precision == "fp32":  # TF32 is switched off around the engine's calls
        assert agreement == 1.0
        assert np.abs(a.reconstruction - b.reconstruction).max() <= 1e-3 * scale
    else:  # stated reduced-precision tolerance
        assert agreement >= 0.9, agreement


CLASSIFIER = PARITY_DIR / "foundation_model.pt"
SWITCHES = (("cuda", "matmul"), ("cudnn", "conv"), ("cudnn", "rnn"),
            ("mkldnn", "matmul"), ("mkldnn", "conv"), ("mkldnn", "rnn"))


def _switches() -> dict[str, str]:
    return {f"{lib}.{op}": getattr(getattr(torch.backends, lib), op).fp32_precision
            for lib, op in SWITCHES}


@pytest.fixture
def user_precision():
    """A caller who allows TF32 and oneDNN bf16 for their own fp32 math (restored after)."""
    before = _switches()
    torch.backends.cuda.matmul.fp32_precision = "tf32"
    torch.backends.cudnn.conv.fp32_precision = "tf32"
    torch.backends.mkldnn.matmul.fp32_precision = "bf16"
    yield _switches()
    for name, value in before.items():
        lib, op = name.split(".")
        getattr(getattr(torch.backends, lib), op).fp32_precision = value


def _record_switches(module: torch.nn.Module, seen: list) -> None:
    module.register_forward_pre_hook(lambda *_: seen.append(_switches()))


def test_engine_calls_run_ieee_fp32_and_restore_the_callers_settings(user_precision):
    tok = load_tokenizer(TOKENIZER)
    clf = load_classifier(CLASSIFIER)
    seen: list[dict] = []
    for model in (tok.module.encoder, tok.module.decoder, clf.module.patch_embed):
        _record_switches(model, seen)
    x = PARITY_REF["case0_x"][0]
    channels = PARITY_CASES[0]["channels"]
    tok.reconstruct(x[None], channels)
    clf.logits(x[None], channels)
    engine = TorchEngine(tok.module, clf.module)
    engine.load()
    engine.run(x, channels)
    assert len(seen) == 6
    assert all(set(s.values()) == {"ieee"} for s in seen)
    assert _switches() == user_precision  # the caller's settings are back
    engine.has_classifier = False  # a failing call restores them too
    tok.module.encoder.register_forward_pre_hook(lambda *_: 1 / 0)
    with pytest.raises(ZeroDivisionError):
        engine.run(x, channels)
    assert _switches() == user_precision


@pytest.mark.slow
def test_cpu_bf16_mode_keeps_tokens_exact():
    fp32 = create_engine(TOKENIZER, CLASSIFIER, backend="pytorch", device="cpu")
    bf16 = create_engine(TOKENIZER, CLASSIFIER, backend="pytorch", device="cpu",
                         precision="bf16")
    text = bf16.describe()
    assert "encoder: fp32" in text and "decoder: bf16 autocast" in text
    assert "classifier: bf16 autocast" in text and "exact fp32 winners" in text
    for case in PARITY_CASES:
        x = PARITY_REF[f"case{case['case']}_x"][0]
        a, b = fp32.run(x, case["channels"]), bf16.run(x, case["channels"])
        assert np.array_equal(a.tokens, b.tokens)
        scale = np.abs(a.reconstruction).max()
        assert np.abs(a.reconstruction - b.reconstruction).max() <= 3e-2 * scale
        assert np.abs(a.logits - b.logits).max() <= 3e-2


@needs_cuda
def test_cuda_api_is_exact_fp32():
    """TF32 (PyTorch's cuDNN default) changed tokens on an H100; the API must match CPU."""
    cpu, gpu = load_tokenizer(TOKENIZER), load_tokenizer(TOKENIZER, device="cuda")
    assert gpu.search.screen == "none"
    for case in PARITY_CASES:
        x = PARITY_REF[f"case{case['case']}_x"]
        a, b = cpu.reconstruct(x, case["channels"]), gpu.reconstruct(x, case["channels"])
        np.testing.assert_array_equal(b["tokens"], PARITY_REF[f"case{case['case']}_tokens"])
        np.testing.assert_allclose(b["std_reconstruction"], a["std_reconstruction"], atol=1e-4)


def _fixture_engine(**kwargs) -> TorchEngine:
    clf = load_classifier(CLASSIFIER)
    engine = TorchEngine(load_tokenizer(TOKENIZER).module, clf.module, **kwargs)
    engine.load()
    return engine


@pytest.mark.slow
def test_whole_window_in_one_call_matches_the_stages():
    staged, fused = _fixture_engine(), _fixture_engine(whole_window=True)
    assert "whole window in one call" in fused.describe()
    for case in PARITY_CASES:
        x = PARITY_REF[f"case{case['case']}_x"][0]
        a, b = staged.run(x, case["channels"]), fused.run(x, case["channels"])
        assert set(b.timings) == {"window"}
        np.testing.assert_array_equal(b.tokens, a.tokens)
        np.testing.assert_allclose(b.reconstruction, a.reconstruction, rtol=0,
                                   atol=1e-5 * np.abs(a.reconstruction).max())
        np.testing.assert_allclose(b.logits, a.logits, rtol=0, atol=1e-5)
        np.testing.assert_allclose(b.probabilities, a.probabilities, rtol=0, atol=1e-5)
    tokens_only = fused.run(x, case["channels"], reconstruct=False)  # staged path
    assert tokens_only.reconstruction is None and "tokenize" in tokens_only.timings
    with pytest.raises(ValueError, match="needs both"):
        TorchEngine(load_tokenizer(TOKENIZER).module, None, whole_window=True)


@pytest.mark.slow
def test_compiled_window_is_cached_and_exact(tmp_path, caplog):
    """AOTInductor (what the GPU path compiles) exercised on CPU with the tiny fixture model:
    compiled once before streaming, found in the engine cache the second time."""
    engine = _fixture_engine(whole_window=True)
    eager = _fixture_engine(whole_window=True)
    channels = PARITY_CASES[0]["channels"][:3]
    folder = engine.compile_window(len(channels), 2, cache_dir=tmp_path)
    assert (folder / "window.pt2").is_file() and "AOTInductor for 6 tokens" in engine.describe()
    x = (np.random.default_rng(3).standard_normal((3, 400)) * 20).astype(np.float32)
    a, b = eager.run(x, channels), engine.run(x, channels)
    np.testing.assert_array_equal(b.tokens, a.tokens)
    np.testing.assert_allclose(b.reconstruction, a.reconstruction, rtol=0,
                               atol=1e-4 * np.abs(a.reconstruction).max())
    np.testing.assert_allclose(b.logits, a.logits, rtol=0, atol=1e-4)
    again = _fixture_engine(whole_window=True)
    with caplog.at_level("INFO", logger="neurorvq_stream.engines.backends._cache"):
        assert again.compile_window(len(channels), 2, cache_dir=tmp_path) == folder
    assert "Engine cache hit" in caplog.text
    np.testing.assert_array_equal(again.run(x, channels).tokens, a.tokens)


@needs_cuda
def test_cuda_whole_window_graph_matches_cpu(tmp_path):
    """One CUDA graph and one copy per window, exact fp32: the CPU engine's tokens."""
    cpu = create_engine(TOKENIZER, CLASSIFIER, backend="pytorch", device="cpu")
    gpu = create_engine(TOKENIZER, CLASSIFIER, backend="pytorch", device="cuda")
    assert gpu.whole_window and gpu.cuda_graphs
    first = PARITY_CASES[0]
    gpu.compile_window(len(first["channels"]), first["n_time"], cache_dir=tmp_path)
    for case in PARITY_CASES:
        x = PARITY_REF[f"case{case['case']}_x"][0]
        gpu.warmup(case["channels"], case["n_time"])
        a, b = cpu.run(x, case["channels"]), gpu.run(x, case["channels"])
        assert set(b.timings) == {"window"}
        np.testing.assert_array_equal(b.tokens, a.tokens)
        np.testing.assert_allclose(b.reconstruction, a.reconstruction, rtol=0,
                                   atol=1e-4 * np.abs(a.reconstruction).max())
        np.testing.assert_allclose(b.logits, a.logits, rtol=0, atol=1e-4)
