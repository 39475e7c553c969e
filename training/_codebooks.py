"""EMA training of the residual codebooks (k-means start, dead-code restarts).

Inference (``engines``) only reads the codebooks; everything that changes them lives here.
The EMA state is kept in the quantizer's own buffers (``embedding.cluster_size``,
``embedding.embed_avg``, ``embedding.initted``, ``cluster_size``: the official checkpoint
keys), so a saved or resumed model carries it. Each level normalizes its residual, picks
the nearest code, and pulls that code toward the normalized residuals assigned to it (no
gradient), while the commitment term pulls the encoder toward its codes. Codes that no
residual has chosen for a while are restarted on random residuals, so the codebook stays
in use.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from neurorvq_stream.engines._tokenizer import NeuroRVQTokenizer, ResidualQuantizer


def _kmeans(points: torch.Tensor, k: int, iters: int, generator: torch.Generator) -> torch.Tensor:
    """Spherical k-means on unit vectors: the start of an EMA codebook."""
    pick = torch.randint(len(points), (k,), generator=generator)
    centers = points[pick.to(points.device)].clone()
    for _ in range(iters):
        assign = (points @ centers.T).argmax(dim=1)
        sums = torch.zeros_like(centers).index_add_(0, assign, points)
        used = torch.bincount(assign, minlength=k) > 0
        centers[used] = F.normalize(sums[used], dim=1)
    return centers


def reset_codebooks(tokenizer: NeuroRVQTokenizer) -> None:
    """Mark every codebook of a fresh tokenizer as not initialised (k-means on first batch)."""
    for name, buffer in tokenizer.named_buffers():
        if name.endswith("embedding.initted"):
            buffer.zero_()


class EmaResidualCodebooks:
    """Quantizes with, and trains in place, the codebooks of one ``ResidualQuantizer``."""

    def __init__(
        self, quantizer: ResidualQuantizer, decay: float = 0.99, kmeans_iters: int = 10,
        dead_after: float = 0.03, generator: torch.Generator | None = None,
        level_gains: bool = False,
    ) -> None:
        self.levels = list(quantizer.layers)
        self.decay, self.kmeans_iters, self.dead_after = decay, kmeans_iters, dead_after
        self.level_gains = level_gains
        self.generator = generator or torch.Generator().manual_seed(0)

    def __call__(
        self, features: torch.Tensor, update: bool = True
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Quantize (..., dim) features: straight-through quantized, commitment, codes.

        The forward value is the sum of the chosen codes, exactly what ``engines`` computes;
        the commitment is the mean over levels of the MSE between each normalized residual
        and its (detached) code; codes are (n_levels, ...).
        """
        flat = features.reshape(-1, features.shape[-1])
        residual, total = flat, torch.zeros_like(flat)
        commitment = flat.new_zeros(())
        codes = []
        for level in self.levels:
            book = level.embedding
            unit = F.normalize(residual, dim=-1, eps=1e-12)
            if update and not bool(book.initted):
                self._init(level, unit.detach(), residual.detach())
            code = level.nearest(residual.detach())
            chosen = book.weight[code]
            commitment = commitment + F.mse_loss(unit, F.normalize(chosen, dim=-1))
            if update:
                self._ema_update(level, unit.detach(), code, residual.detach())
            residual = residual - chosen
            total = total + chosen
            codes.append(code)
        quantized = flat + (total - flat).detach()
        lead = features.shape[:-1]
        stacked = torch.stack(codes).reshape(len(codes), *lead)
        return quantized.reshape(features.shape), commitment / len(self.levels), stacked

    def _gain(self, unit: torch.Tensor, residual: torch.Tensor, directions: torch.Tensor
              ) -> float:
        """Mean length of the residuals along their codes' directions (1 without gains)."""
        if not self.level_gains:
            return 1.0
        return float(((unit * directions).sum(-1) * residual.norm(dim=-1)).mean().clamp_min(1e-3))

    @torch.no_grad()
    def _init(self, level: torch.nn.Module, unit: torch.Tensor, residual: torch.Tensor) -> None:
        book = level.embedding
        centers = _kmeans(unit.float(), book.weight.shape[0], self.kmeans_iters, self.generator)
        nearest = (unit @ centers.T).argmax(dim=1)
        book.weight.copy_(centers * self._gain(unit, residual, centers[nearest]))
        book.embed_avg.copy_(centers)
        book.cluster_size.fill_(1.0)
        book.initted.fill_(1.0)

    @torch.no_grad()
    def _ema_update(self, level: torch.nn.Module, unit: torch.Tensor, code: torch.Tensor,
                    residual: torch.Tensor) -> None:
        book = level.embedding
        n_code = book.weight.shape[0]
        counts = torch.bincount(code, minlength=n_code).to(unit.dtype)
        sums = torch.zeros_like(book.weight).index_add_(0, code, unit)
        book.cluster_size.mul_(self.decay).add_(counts, alpha=1 - self.decay)
        book.embed_avg.mul_(self.decay).add_(sums, alpha=1 - self.decay)
        level.cluster_size.copy_(book.cluster_size)
        # Every code of a level keeps one length (the level's gain), so the engines' nearest
        # search on the normalized residual picks the code of the closest direction.
        gain = float(book.weight[0].norm())
        if self.level_gains:
            batch = self._gain(unit, residual, F.normalize(book.weight[code], dim=-1))
            gain = self.decay * gain + (1 - self.decay) * batch
        used = counts > 0
        book.weight.copy_(F.normalize(book.weight, dim=1) * gain)
        book.weight[used] = F.normalize(book.embed_avg[used], dim=1) * gain
        dead = book.cluster_size < self.dead_after
        n_dead = int(dead.sum())
        if n_dead:
            pick = torch.randint(len(unit), (n_dead,), generator=self.generator)
            fresh = unit[pick.to(unit.device)]
            book.weight[dead] = fresh * gain
            book.embed_avg[dead] = fresh
            book.cluster_size[dead] = 1.0


def codebook_usage(codes: torch.Tensor, n_code: int) -> float:
    """Mean fraction of each (branch, level) codebook used by ``codes`` (branches, levels, ...)."""
    flat = codes.reshape(codes.shape[0] * codes.shape[1], -1)
    return float(torch.tensor([len(torch.unique(row)) / n_code for row in flat]).mean())
