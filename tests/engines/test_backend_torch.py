"""PyTorch backend guards on CPU; autocast and CUDA graphs where a GPU exists."""

import numpy as np
import pytest
import torch
from conftest import PARITY_DIR

from neurorvq_stream.engines import ELECTRODES, load_tokenizer
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
    if precision == "fp32":  # TF32 is off by default for matmuls in torch
        assert agreement == 1.0
        assert np.abs(a.reconstruction - b.reconstruction).max() <= 1e-3 * scale
    else:  # stated reduced-precision tolerance
        assert agreement >= 0.9, agreement
