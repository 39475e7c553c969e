"""The exact screened nearest-code search returns the fp32 reference's codes, bit for bit.

Covered: the screening error bounds on adversarial residuals, the authors' fixtures for every
screen kind, v1-size random weights (8192 x 128 codes), and constructed near-ties, which
must be recomputed by the reference (and only they).
"""


import numpy as np
import pytest
import torch
import torch.nn.functional as F
from helpers import PARITY_CASES, PARITY_DIR, PARITY_REF

from neurorvq_stream.engines import ELECTRODES, NeuroRVQConfig, Tokenizer, load_tokenizer
from neurorvq_stream.engines._nearest import (
    CodeSearch,
    _Bf16Scores,
    _Int8Scores,
    fp32_nearest,
    int8_screen_available,
    reference_blocks,
)
from neurorvq_stream.engines._tokenizer import NeuroRVQTokenizer

# Its module-scoped fixtures are built once: every test of the module on one xdist worker.
pytestmark = pytest.mark.xdist_group("engines/test_nearest.py")

SCREENS = [
    pytest.param("int8", marks=pytest.mark.skipif(
        not int8_screen_available(), reason="no oneDNN int8 kernels in this PyTorch build")),
    "bf16",
]


def _unit_codebook(n: int, k: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return F.normalize(torch.randn(n, k, generator=g), dim=-1)


def _adversarial_rows(codes: torch.Tensor, seed: int) -> torch.Tensor:
    """Residual directions that stress the bounds: random, codes themselves, spiky, zero."""
    g = torch.Generator().manual_seed(seed)
    k = codes.shape[1]
    random = torch.randn(40, k, generator=g)
    spiky = torch.zeros(4, k)
    spiky[torch.arange(4), torch.arange(4)] = 1.0
    spiky[1, 5:] = 1e-3
    rows = torch.cat((random, codes[:8], -codes[8:12], spiky, torch.zeros(1, k)))
    return F.normalize(rows, dim=-1, eps=1e-12)


@pytest.mark.parametrize("screen", SCREENS)
def test_screen_error_within_bound(screen):
    codes = _unit_codebook(1024, 128, seed=1)
    unit = _adversarial_rows(codes, seed=2)
    scorer = _Int8Scores(codes) if screen == "int8" else _Bf16Scores(codes)
    raw, scale, bound = scorer(unit)
    estimate = scale[:, None] * raw.numpy().astype(np.float64)
    exact = unit.double().numpy() @ codes.double().numpy().T
    error = np.abs(estimate - exact)
    assert (error <= bound[:, None]).all(), float((error - bound[:, None]).max())
    # the bound is a real one, not a blanket: within 30x of the worst actual error
    assert bound.max() < 30 * error.max()


@pytest.mark.parametrize("screen", [*SCREENS, "none"])
@pytest.mark.parametrize("case", PARITY_CASES, ids=lambda c: f"case{c['case']}")
def test_fixture_tokens_identical_for_every_screen(screen, case):
    tok = load_tokenizer(PARITY_DIR / "tokenizer.pt", screen=screen)
    tokens = tok.tokenize(PARITY_REF[f"case{case['case']}_x"], case["channels"])
    assert np.array_equal(tokens, PARITY_REF[f"case{case['case']}_tokens"])
    assert tok.search.stats.rows == tokens.size  # one search per token, branch and level


@pytest.fixture(scope="module")
def v1_tokenizer():
    """v1-size tokenizer with seeded random weights and unit-norm codebooks (as trained)."""
    torch.manual_seed(0)
    model = NeuroRVQTokenizer(NeuroRVQConfig()).eval()
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith(("pos_embed", "time_embed", "cls_token")):
                p.normal_(0, 0.02)
            if name.endswith("embedding.weight"):
                p.copy_(F.normalize(p, dim=-1))
    return model


@pytest.mark.parametrize(
    ("screen", "shape"),
    [
        pytest.param("int8", (2, 16, 4), marks=SCREENS[0].marks),  # 128 rows: one block
        pytest.param("int8", (3, 20, 4), marks=SCREENS[0].marks),  # 240 rows: two blocks
        ("bf16", (1, 5, 2)),  # bf16 is emulated (slow) on CPUs without bf16 instructions
    ],
)
@pytest.mark.slow
def test_v1_size_codes_and_vectors_identical(v1_tokenizer, screen, shape):
    batch, n_ch, n_p = shape
    x = np.random.default_rng(n_ch).standard_normal((batch, n_ch, n_p * 200)) * 20
    tok = Tokenizer(v1_tokenizer, None, screen=screen)
    w = tok.prepare(x.astype(np.float32), list(ELECTRODES[10:10 + n_ch]))
    with torch.inference_mode():
        feats = v1_tokenizer.encode_features(w.patches, w.spatial_ix, w.time_ix)
        ref_codes, ref_vectors = v1_tokenizer.quantize(feats, v1_tokenizer.code_sq_norms())
        codes, vectors = tok.search.quantize(feats)
    assert torch.equal(codes, ref_codes)
    assert torch.equal(vectors, ref_vectors)
    stats = tok.search.stats
    assert stats.rows == codes.numel()
    assert stats.candidates < 40 * stats.rows  # the screen keeps a few codes per row


def _tie_rows(codes: torch.Tensor, gaps: list[float], seed: int) -> torch.Tensor:
    """For each gap, a unit row whose two nearest codes differ by ``gap`` in u.e.

    Writes the pair into ``codes`` at random places (either order); gap "dup" puts the same
    fp32 vector twice, an exact tie the reference resolves to the lower index.
    """
    g = torch.Generator().manual_seed(seed)
    n, k = codes.shape
    rows = []
    places = torch.randperm(n, generator=g)[: 2 * len(gaps)].reshape(-1, 2)
    for gap, (i, j) in zip(gaps, places.tolist(), strict=True):
        basis, _ = torch.linalg.qr(torch.randn(k, 3, generator=g, dtype=torch.float64))
        u, w1, w2 = basis.T
        a = 0.9
        b = a if gap == "dup" else a - gap
        codes[i] = (a * u + (1 - a * a) ** 0.5 * w1).float()
        codes[j] = codes[i] if gap == "dup" else (b * u + (1 - b * b) ** 0.5 * w2).float()
        rows.append(u.float())
    return torch.stack(rows)


@pytest.mark.parametrize("screen", SCREENS)
def test_near_ties_are_recomputed_and_match(screen):
    codes = _unit_codebook(8192, 128, seed=3)
    ties = _tie_rows(codes, ["dup", 0.0, 1e-9, 1e-7, 1e-6], seed=4)
    clear = _tie_rows(codes, [1e-3, 1e-2, 5e-2], seed=5)
    sq = (codes * codes).sum(1)
    search = CodeSearch([[codes]], sq[None, None], screen)
    g = torch.Generator().manual_seed(6)
    filler = F.normalize(torch.randn(192, 128, generator=g), dim=-1)
    # 200 rows: reference blocks [0, 128) and [128, 200); the ties sit in the second one.
    unit = torch.cat((filler[:130], ties, filler[130:], clear))
    ref = fp32_nearest(unit, codes, sq)
    got = search.nearest(0, 0, unit)
    assert torch.equal(got, ref)
    stats = search.stats
    assert (stats.rows, stats.blocks) == (200, len(reference_blocks(200, 8192))) == (200, 2)
    assert stats.uncertified == len(ties)  # gaps <= 1e-6 are below fp32's own rounding
    assert stats.recomputed == 1  # only the block holding them
    search.stats.reset()
    assert torch.equal(search.nearest(0, 0, clear), fp32_nearest(clear, codes, sq))
    assert search.stats.uncertified == 0  # gaps >= 1e-3 are decided exactly


def test_non_unit_codebooks_use_the_fp32_search():
    codes = torch.randn(512, 32, generator=torch.Generator().manual_seed(7))
    sq = (codes * codes).sum(1)
    search = CodeSearch([[codes]], sq[None, None], "bf16")
    assert search.screened_levels == 0 and "fp32 matmul" in search.describe()
    unit = F.normalize(torch.randn(50, 32), dim=-1)
    assert torch.equal(search.nearest(0, 0, unit), fp32_nearest(unit, codes, sq))


def test_bad_screen_names_the_choices():
    codes = _unit_codebook(64, 8, seed=8)
    with pytest.raises(ValueError, match="screen must be one of"):
        CodeSearch([[codes]], (codes * codes).sum(1)[None, None], "fp8")


def test_reference_blocks_partition_rows():
    for rows, codes in ((1, 8192), (128, 8192), (129, 8192), (1000, 512), (5000, 256)):
        blocks = reference_blocks(rows, codes)
        covered = np.concatenate([np.arange(rows)[b] for b in blocks])
        assert np.array_equal(covered, np.arange(rows))
