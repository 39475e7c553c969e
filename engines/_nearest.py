"""Nearest-code search of frozen codebooks: the fp32 reference, and an exact screened search.

The residual quantizer asks, for each unit residual ``u``, which code ``e_j`` minimizes
``D_j = |e_j|^2 - 2 u.e_j``. The reference, :func:`fp32_nearest`, computes every ``D_j`` by
fp32 ``addmm`` and takes the argmin; that search is half of the tokenizer's arithmetic.

:class:`CodeSearch` returns the same codes for less work. It scores every code in reduced
precision (int8 or bf16 dot products, whichever this CPU runs fast), keeps the codes whose
score is within a proven error bound of the best, re-scores only those exactly, and accepts
the winner only where its margin exceeds the worst-case rounding of the fp32 reference
itself, so that any fp32 evaluation order would pick it too. Where that cannot be shown (a
near-tie at fp32 rounding level) the reference recomputes that row block with the very call
:func:`fp32_nearest` makes, so the result is bit for bit the reference's. How often that
happens is counted in :class:`SearchStats`.

The reference runs on CPU in fixed blocks of rows (:func:`reference_blocks`): a BLAS result
may depend on the shape of the call, so a near-tie row can only be reproduced by repeating
the call it was computed in, and a small block makes that repetition cheap.

Error bounds, with ``y_j = u.e_j - |e_j|^2 / 2`` (maximized; ``D_j = -2 y_j``) and ``u'``,
``e'_j`` the reduced-precision vectors the screening kernel multiplies:

- screening: ``|u'.e'_j - u.e_j| <= |u| |e_j - e'_j| + |u - u'| |e'_j|`` (Cauchy-Schwarz),
  plus the kernel's own rounding; the code terms are computed once in float64, the row
  terms per call; the screen leaves out ``|e_j|^2 / 2`` and adds half its spread instead
  (codebooks are unit-norm, so the spread is a few ulps);
- reference: an fp32 sum of the ``K + 1`` terms of ``D_j`` in any order is within
  ``gamma_{K+1} T_j`` of ``D_j``, ``T_j = |e_j|^2 + 2 sum_k |u_k e_jk|`` (Higham, Accuracy and
  Stability of Numerical Algorithms, 2nd ed., sec. 3.1), ``gamma_n = n 2^-24 / (1 - n 2^-24)``;
- exact re-scoring in float64 of fp32 inputs: products are exact, the sum within 1e-12.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

SCREENS = ("auto", "int8", "bf16", "none")
_UNIT_FP32 = 2.0**-24
_UNIT_BF16 = 2.0**-8
_RESCORE_ERROR = 1e-12
#: Residuals are quantized to |q| <= 63 and stored as u8 in [1, 127]: the u8 x s8 pair sums
#: of AVX2 kernels (vpmaddubsw) then stay below the int16 saturation limit.
_INT8_ACTIVATION_LEVELS = 63
_REFERENCE_BLOCK_CODES = 1 << 20  # scores per reference block (128 rows of 8192 codes)
#: The screen leaves |e_j|^2 / 2 out and pays its spread in the bound, so it screens only
#: (nearly) unit-norm codebooks, which is how NeuroRVQ trains them; others use fp32.
_MAX_HALF_SQ_SPREAD = 1e-3


def reference_blocks(n_rows: int, n_codes: int) -> list[slice]:
    """Row blocks in which :func:`fp32_nearest` evaluates on CPU (a function of the shape)."""
    size = max(64, _REFERENCE_BLOCK_CODES // max(n_codes, 1))
    return [slice(start, min(start + size, n_rows)) for start in range(0, n_rows, size)]


def _fp32_block(
    unit: torch.Tensor, codes: torch.Tensor, sq_norms: torch.Tensor, rows: slice
) -> torch.Tensor:
    return torch.addmm(sq_norms, unit[rows], codes.t(), alpha=-2.0).argmin(dim=1)


def fp32_nearest(unit: torch.Tensor, codes: torch.Tensor, sq_norms: torch.Tensor) -> torch.Tensor:
    """The reference search: index of ``min_j |e_j|^2 - 2 u.e_j`` by fp32 matmul + argmin.

    On CPU in eager mode it runs block by block (:func:`reference_blocks`); on GPUs, and
    when traced or compiled (ONNX export, torch.compile), as one call.
    """
    if unit.device.type != "cpu" or torch.jit.is_tracing() or torch.compiler.is_compiling():
        return torch.addmm(sq_norms, unit, codes.t(), alpha=-2.0).argmin(dim=1)
    blocks = reference_blocks(unit.shape[0], codes.shape[0])
    if len(blocks) == 1:
        return _fp32_block(unit, codes, sq_norms, blocks[0])
    return torch.cat([_fp32_block(unit, codes, sq_norms, rows) for rows in blocks])


def _gamma(n: int) -> float:
    return n * _UNIT_FP32 / (1 - n * _UNIT_FP32)


def int8_screen_available() -> bool:
    """True where oneDNN's int8 linear kernels exist (x86 builds of PyTorch)."""
    return torch.backends.mkldnn.is_available() and hasattr(torch.ops.onednn, "qlinear_pointwise")


def native_bf16() -> bool:
    """True on CPUs with bf16 dot-product instructions (AVX512-BF16 or AMX)."""
    return bool(torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported())


def default_screen() -> str:
    """The screening kind ``screen="auto"`` picks on this CPU, fastest exact option first."""
    if native_bf16():
        return "bf16"
    if int8_screen_available():
        return "int8"
    return "none"


@dataclass
class SearchStats:
    """Counters of :class:`CodeSearch`.

    ``rows``: searches (one per residual and level); ``uncertified``: rows too close to an
    fp32 tie to decide without the reference; ``blocks``: reference row blocks covered;
    ``recomputed``: blocks the fp32 reference had to redo; ``candidates``: codes re-scored.
    """

    rows: int = 0
    uncertified: int = 0
    blocks: int = 0
    recomputed: int = 0
    candidates: int = 0

    @property
    def fallback_rate(self) -> float:
        """Fraction of the fp32 reference's work that still ran (recomputed blocks)."""
        return self.recomputed / self.blocks if self.blocks else 0.0

    def reset(self) -> None:
        self.rows = self.uncertified = self.blocks = self.recomputed = self.candidates = 0


def _norms(x: np.ndarray) -> np.ndarray:
    return np.sqrt(np.einsum("ij,ij->i", x, x))


class _Int8Scores:
    """Screening by int8 dot products (oneDNN u8 x s8 -> s32, exact) with one codebook.

    Codes get a per-code scale (127 levels), residuals a per-row scale (63 levels); the
    kernel returns ``code_scale * int_dot`` and the row scale is applied by the caller.
    """

    def __init__(self, codes: torch.Tensor) -> None:
        scale = codes.abs().amax(dim=1).clamp_min(torch.finfo(torch.float32).tiny) / 127
        weight = torch.round(codes / scale[:, None]).clamp(-127, 127).to(torch.int8)
        dequant = weight.double() * scale.double()[:, None]
        self.code_error = float((codes.double() - dequant).norm(dim=1).max())
        self.code_norm = float(dequant.norm(dim=1).max())
        self.scale = scale
        self.zero_points = torch.zeros(len(codes), dtype=torch.long)
        self.packed = torch.ops.onednn.qlinear_prepack(weight, None)

    def __call__(self, unit: torch.Tensor) -> tuple[torch.Tensor, np.ndarray, np.ndarray]:
        """Raw scores (M, N), row scales and error bounds (M,): ``u.e_j ~ scale * raw``."""
        levels = _INT8_ACTIVATION_LEVELS
        row_max = unit.abs().amax(dim=1)
        row_scale = torch.where(row_max > 0, row_max / levels, 1.0)
        q = torch.round(unit / row_scale[:, None]).clamp_(-levels, levels)
        raw = torch.ops.onednn.qlinear_pointwise(
            (q + (levels + 1)).to(torch.uint8), 1.0, levels + 1, self.packed, self.scale,
            self.zero_points, None, 1.0, 0, torch.float32, "none", [], "",
        )
        u64, scale64 = unit.numpy().astype(np.float64), row_scale.numpy().astype(np.float64)
        u_norm = _norms(u64)
        dq_norm = _norms(u64 - q.numpy() * scale64[:, None])
        dot = (u_norm + dq_norm) * self.code_norm  # >= |u'.e'_j|
        # Integer dot exact; the code scale product and the row scale: a few fp32 roundings.
        bound = u_norm * self.code_error + dq_norm * self.code_norm + 4 * _UNIT_FP32 * dot
        return raw, scale64, bound


class _Bf16Scores:
    """Screening by a bf16 matmul (fp32 accumulation, bf16 result) with one codebook."""

    def __init__(self, codes: torch.Tensor) -> None:
        weight = codes.to(torch.bfloat16)
        dequant = weight.double()
        self.code_error = float((codes.double() - dequant).norm(dim=1).max())
        self.code_norm = float(dequant.norm(dim=1).max())
        self.weight_t = weight.t().contiguous()
        self.accumulate = _gamma(codes.shape[1])

    def __call__(self, unit: torch.Tensor) -> tuple[torch.Tensor, np.ndarray, np.ndarray]:
        rounded = unit.to(torch.bfloat16)
        raw = (rounded @ self.weight_t).float()
        u64 = unit.numpy().astype(np.float64)
        u_norm = _norms(u64)
        du_norm = _norms(u64 - rounded.float().numpy())
        dot = (u_norm + du_norm) * self.code_norm  # >= sum_k |u'_k e'_jk|
        rounding = (self.accumulate + _UNIT_BF16 * (1 + self.accumulate)) * dot
        bound = u_norm * self.code_error + du_norm * self.code_norm + rounding
        return raw, np.ones(len(u64)), bound


def _block_size(n: int, largest: int = 128) -> int:
    """Largest power of two <= ``largest`` dividing ``n``: scores are screened in blocks."""
    size = largest
    while n % size:
        size //= 2
    return size


class _LevelSearch:
    """Exact screened search over one frozen codebook (N, K).

    The screening matmul and the block maxima run in torch; the few candidates per row are
    handled in numpy, whose per-call overhead is a fraction of torch's at these sizes.
    """

    def __init__(self, codes: torch.Tensor, sq_norms: torch.Tensor, screen: str) -> None:
        self.codes = codes
        self.sq_norms = sq_norms
        self.codes_np = codes.numpy()
        self.half_sq = sq_norms.double().numpy() / 2
        # The screen estimates y_j by u'.e'_j - center; |center - |e_j|^2/2| <= spread.
        self.center = (self.half_sq.max() + self.half_sq.min()) / 2
        self.spread = (self.half_sq.max() - self.half_sq.min()) / 2
        self.code_norm_max = float(codes.double().norm(dim=1).max())
        self.reference_error = _gamma(codes.shape[1] + 1)
        self.block = _block_size(codes.shape[0])
        self.scores = _Int8Scores(codes) if screen == "int8" else _Bf16Scores(codes)

    def __call__(self, unit: torch.Tensor, stats: SearchStats) -> torch.Tensor:
        """Codes (M,) of unit rows (M, K), block by block: a block's scores stay in cache,
        and an uncertified row costs the fp32 reference only its own block."""
        blocks = reference_blocks(unit.shape[0], self.codes.shape[0])
        found = [self._block(unit, rows, stats) for rows in blocks]
        return found[0] if len(found) == 1 else torch.cat(found)

    def _block(self, unit_all: torch.Tensor, block: slice, stats: SearchStats) -> torch.Tensor:
        unit = unit_all[block]
        m_rows, n = unit.shape[0], self.codes.shape[0]
        raw, scale, bound = self.scores(unit)
        bound = bound + self.spread + 1e-12
        block_max = raw.view(m_rows, n // self.block, self.block).amax(dim=2).numpy()
        u64 = unit.numpy().astype(np.float64)
        # Reference rounding (D units) for any code, from sum |u_k e_jk| <= |u| |e_j|.
        u_norm = _norms(u64)
        far_error = 2 * self.reference_error * (self.half_sq.max() + u_norm * self.code_norm_max)
        # Keep every code that could be within rounding of the best: the true best scores
        # >= max - 2 bound, and a rival needs D within the reference's error of it.
        best_screen = scale * block_max.max(axis=1) - self.center
        wanted = best_screen - 2 * bound - far_error - 1e-9
        threshold = ((wanted + self.center) / scale).astype(np.float32)  # in raw units
        row, blk = np.nonzero(block_max >= threshold[:, None])
        candidate_blocks = raw.numpy().reshape(-1, self.block)[row * (n // self.block) + blk]
        hit, offset = np.nonzero(candidate_blocks >= threshold[row, None])
        rows, cols = row[hit], blk[hit] * self.block + offset  # sorted by row
        stats.candidates += len(rows)
        # Exact re-scoring: fp32 x fp32 products are exact in float64.
        codes, u_rows = self.codes_np[cols].astype(np.float64), u64[rows]
        exact = np.einsum("ij,ij->i", u_rows, codes) - self.half_sq[cols]
        abs_dot = np.einsum("ij,ij->i", np.abs(u_rows), np.abs(codes))
        ref_err = self.reference_error * (2 * self.half_sq[cols] + 2 * abs_dot)  # D units
        starts = np.flatnonzero(np.r_[True, rows[1:] != rows[:-1]])
        present = rows[starts]
        best = np.full(m_rows, -np.inf)
        best[present] = np.maximum.reduceat(exact, starts)
        is_best = exact == best[rows]
        n_best = np.bincount(rows[is_best], minlength=m_rows)
        winner = np.zeros(m_rows, dtype=np.int64)
        winner[rows[is_best]] = cols[is_best]
        winner_err = np.zeros(m_rows)
        winner_err[rows[is_best]] = ref_err[is_best]
        rival_max = np.full(m_rows, -np.inf)
        rival_max[present] = np.maximum.reduceat(
            np.where(is_best, -np.inf, exact + ref_err / 2), starts
        )
        # D_rival - D_winner > err_winner + err_rival: every fp32 order keeps the winner.
        near = best - rival_max > winner_err / 2 + 2 * _RESCORE_ERROR
        # Codes below the threshold: y_j < scale * threshold - center + bound.
        below = scale * threshold.astype(np.float64) - self.center + bound
        far = best - _RESCORE_ERROR - below > (winner_err + far_error) / 2
        certified = (n_best == 1) & near & far
        stats.rows += m_rows
        stats.blocks += 1
        if certified.all():
            return torch.from_numpy(winner)
        stats.uncertified += int((~certified).sum())
        stats.recomputed += 1
        return _fp32_block(unit_all, self.codes, self.sq_norms, block)


class CodeSearch:
    """Residual quantization with frozen codebooks, codes identical to the fp32 reference.

    ``codebooks[g][l]`` is the (N, K) code matrix of branch g, level l; ``sq_norms``
    (G, L, N) the squared norms the reference uses. ``screen``: "auto" (the fastest exact
    kind on this CPU, see :func:`default_screen`), "int8", "bf16", or "none" (the fp32
    reference search itself). Build a new one if the codebooks change.
    """

    def __init__(
        self,
        codebooks: Sequence[Sequence[torch.Tensor]],
        sq_norms: torch.Tensor,
        screen: str = "auto",
    ) -> None:
        if screen not in SCREENS:
            raise ValueError(f"screen must be one of {SCREENS}, got {screen!r}.")
        self.codebooks = [list(levels) for levels in codebooks]
        self.sq_norms = sq_norms
        device = self.codebooks[0][0].device
        if screen == "auto":
            screen = default_screen() if device.type == "cpu" else "none"
        if screen == "int8" and not int8_screen_available():
            raise ValueError("screen='int8' needs PyTorch's oneDNN int8 kernels (x86 CPU).")
        if screen != "none" and device.type != "cpu":
            raise ValueError(f"screen={screen!r} runs on CPU; the codebooks are on {device}.")
        self.screen = screen
        self.stats = SearchStats()
        self._levels = [
            [
                _LevelSearch(c, n, screen)
                if screen != "none" and float(n.max() - n.min()) / 2 <= _MAX_HALF_SQ_SPREAD
                else None
                for c, n in zip(levels, norms, strict=True)
            ]
            for levels, norms in zip(self.codebooks, sq_norms, strict=True)
        ]
        self.screened_levels = sum(lv is not None for levels in self._levels for lv in levels)

    def describe(self) -> str:
        """How the nearest codes are found, for ``describe()`` lines."""
        total = sum(len(levels) for levels in self._levels)
        if self.screened_levels == 0:
            return "nearest codes: fp32 matmul + argmin"
        partial = "" if self.screened_levels == total else (
            f" on {self.screened_levels}/{total} unit-norm codebooks, fp32 on the others"
        )
        return (
            f"nearest codes: {self.screen} screen{partial}, exact fp32 winners "
            "(fp32 near-ties recomputed by the fp32 search)"
        )

    def nearest(self, branch: int, level: int, unit: torch.Tensor) -> torch.Tensor:
        """Code indices (M,) of the L2-normalized residuals ``unit`` (M, K)."""
        search = self._levels[branch][level]
        if search is not None:
            return search(unit, self.stats)
        codes, norms = self.codebooks[branch][level], self.sq_norms[branch, level]
        self.stats.rows += unit.shape[0]
        self.stats.blocks += len(reference_blocks(unit.shape[0], codes.shape[0]))
        return fp32_nearest(unit, codes, norms)

    def quantize(self, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Codes (G, L, ...) and quantized vectors (G, ..., K) of features (G, ..., K).

        The arithmetic of ``ResidualQuantizer.quantize`` per branch, so the codes and the
        summed vectors are bit-identical to it.
        """
        codes, vectors = [], []
        for g, branch in enumerate(features.unbind(0)):
            flat = branch.reshape(-1, branch.shape[-1])
            residual, quantized, found = flat, torch.zeros_like(flat), []
            for lv, weight in enumerate(self.codebooks[g]):
                code = self.nearest(g, lv, F.normalize(residual, dim=-1, eps=1e-12))
                vector = F.embedding(code, weight)
                residual = residual - vector
                quantized = quantized + vector
                found.append(code)
            codes.append(torch.stack(found).reshape(len(found), *branch.shape[:-1]))
            vectors.append(quantized.reshape(branch.shape))
        return torch.stack(codes), torch.stack(vectors)
