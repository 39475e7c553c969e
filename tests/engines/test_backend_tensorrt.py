"""TensorRT backend: profiles everywhere; engine build and parity where TensorRT runs."""

import numpy as np
import pytest
from helpers import PARITY_DIR

from neurorvq_stream.engines import ELECTRODES, NeuroRVQConfig
from neurorvq_stream.engines.backends import create_engine, tensorrt_unavailable_reason
from neurorvq_stream.engines.backends._tensorrt import (
    DEFAULT_CHANNELS,
    DEFAULT_PATCHES,
    graph_profile,
)

TRT_REASON = tensorrt_unavailable_reason()
needs_trt = pytest.mark.skipif(TRT_REASON is not None, reason=f"TensorRT: {TRT_REASON}")


def test_default_profile_covers_1_128_channels_1_16_patches():
    cfg = NeuroRVQConfig(code_dim=32)
    tok = graph_profile("tokenize", cfg)
    assert tok["x"] == ((1, 1, 200), (1, 64, 800), (1, 128, 3200))
    assert tok["channel_ix"] == ((1,), (64,), (128,))
    dec = graph_profile("decode", cfg, (2, 8, 20), (1, 2, 6))
    assert dec["quantized"] == ((4, 1, 2, 32), (4, 1, 16, 32), (4, 1, 120, 32))
    assert DEFAULT_CHANNELS == (1, 64, 128) and DEFAULT_PATCHES == (1, 4, 16)


def test_profile_errors():
    cfg = NeuroRVQConfig()
    with pytest.raises(ValueError, match="min <= opt <= max"):
        graph_profile("tokenize", cfg, (8, 4, 16))
    with pytest.raises(ValueError, match="exceeds"):
        graph_profile("classify", cfg, patches=(1, 4, 300))
    with pytest.raises(ValueError, match="Unknown graph"):
        graph_profile("encode", cfg)


@pytest.mark.skipif(TRT_REASON is None, reason="TensorRT is available here")
def test_tensorrt_backend_says_why_it_cannot_run(tmp_path):
    with pytest.raises(RuntimeError, match="TensorRT cannot run here"):
        create_engine(PARITY_DIR / "tokenizer.pt", None, backend="tensorrt",
                      cache_dir=tmp_path)


@needs_trt
@pytest.mark.parametrize("precision", ["fp32", "fp16"])
def test_tensorrt_parity_and_cache(tmp_path, precision):
    tok, clf = PARITY_DIR / "tokenizer.pt", PARITY_DIR / "foundation_model.pt"
    engine = create_engine(tok, clf, backend="tensorrt", precision=precision, cache_dir=tmp_path)
    ref = create_engine(tok, clf, backend="pytorch", cache_dir=tmp_path)
    channels = list(ELECTRODES[:20])
    x = (np.random.default_rng(1).standard_normal((20, 800)) * 20).astype(np.float32)
    a, b = engine.run(x, channels), ref.run(x, channels)
    agreement = (a.tokens == b.tokens).mean()
    if precision == "fp32":
        assert agreement == 1.0
        assert np.abs(a.logits - b.logits).max() <= 1e-4
    else:  # stated fp16 tolerance
        assert agreement >= 0.95, agreement
        assert np.abs(a.probabilities - b.probabilities).max() <= 1e-2
    engines = list(tmp_path.glob("trt-*"))
    assert len(engines) == 3 and all((p / "metadata.json").is_file() for p in engines)
