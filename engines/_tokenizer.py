"""NeuroRVQ tokenizer: multi-scale encoder -> 4 x 8 residual quantizers -> decoder -> signal.

Public classes (attribute names match the official checkpoint keys):

- ``Codebook(n_code, dim)``: ``weight`` plus the EMA training state the checkpoints carry
  (``cluster_size``, ``embed_avg``, ``initted``); inference only reads ``weight``.
- ``ResidualQuantizer(n_levels, n_code, dim)``: ``layers.l.embedding``.
  ``quantize(features (..., dim)) -> (codes (n_levels, ...) int64, quantized (..., dim))``;
  the quantized sum carries a straight-through gradient to ``features`` when grad is on.
- ``TokenizerEncoder(cfg)``: ``Backbone`` + ``patch_embed`` + ``fc_norm_i``.
- ``TokenizerDecoder(cfg)``: ``Backbone`` + ``patch_embed_i.proj`` + ``fc_norm_i``;
  ``forward(quantized (branches, B, N, code_dim), spatial_ix, time_ix) -> (B, N, 800)``.
- ``NeuroRVQTokenizer(cfg)``:
  ``encode_features(patches (B, N, P), spatial_ix (B, N), time_ix (B, N))
  -> (branches, B, N, code_dim)``; ``quantize(features) -> (codes (branches, levels, B, N),
  quantized (branches, B, N, code_dim))``; ``decode(quantized, spatial_ix, time_ix)
  -> (amplitude, sin, cos)`` each (B, N, P); ``amplitude_stats(patches) -> (mean, std)``
  each (B, 1, 1); ``spectrum_to_signal(amplitude, sin, cos, mean, std) -> (B, N, P)`` uV;
  ``log_amplitude(patches)`` the standardization target for training;
  ``forward(...)`` = tokenize (codes only, the decoder does not run).
  ``code_sq_norms()`` squared code norms that frozen-weight callers pass as ``sq_norms``;
  ``code_search(screen)`` the exact screened search (``engines._nearest``) for inference.

Patches are ``x.reshape(B, C * A, P)`` of a window ``x (B, C, A*P)``: channel-major tokens.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ._config import NeuroRVQConfig
from ._layers import Backbone, MultiScalePatchEmbed, branch_layer_norm, branch_linear
from ._nearest import CodeSearch, fp32_nearest


class Codebook(nn.Module):
    """Code vectors of one RVQ level, with the EMA buffers of the official checkpoints."""

    def __init__(self, n_code: int, dim: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(n_code, dim), requires_grad=False)
        self.register_buffer("cluster_size", torch.zeros(n_code))
        self.register_buffer("embed_avg", torch.zeros(n_code, dim))
        self.register_buffer("initted", torch.ones(1))


class _QuantizerLevel(nn.Module):
    """One residual level: holds the codebook (``embedding``) and its usage counter."""

    def __init__(self, n_code: int, dim: int) -> None:
        super().__init__()
        self.embedding = Codebook(n_code, dim)
        self.register_buffer("cluster_size", torch.zeros(n_code))

    def nearest(self, residual: torch.Tensor, sq_norms: torch.Tensor | None = None) -> torch.Tensor:
        """Index of the code nearest to the L2-normalized residual: one matmul + argmin.

        ``sq_norms`` are the codes' squared norms when the caller keeps them for frozen
        weights (see ``NeuroRVQTokenizer.code_sq_norms``); otherwise they are recomputed.
        """
        unit = F.normalize(residual, dim=-1, eps=1e-12)
        codes = self.embedding.weight
        if sq_norms is None:
            sq_norms = (codes * codes).sum(1)
        # ||u - e||^2 = ||u||^2 + ||e||^2 - 2 u.e; ||u||^2 is the same for every code.
        return fp32_nearest(unit, codes, sq_norms)


class ResidualQuantizer(nn.Module):
    """``n_levels`` codebooks applied one after another to what the previous ones left."""

    def __init__(self, n_levels: int, n_code: int, dim: int) -> None:
        super().__init__()
        self.layers = nn.ModuleList(_QuantizerLevel(n_code, dim) for _ in range(n_levels))

    def quantize(
        self, features: torch.Tensor, sq_norms: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Codes (n_levels, ...) and the summed code vectors (..., dim) of ``features``.

        ``sq_norms`` (n_levels, n_code): precomputed squared code norms for frozen weights.
        """
        flat = features.reshape(-1, features.shape[-1])
        residual = flat
        quantized = torch.zeros_like(flat)
        codes = []
        for i, level in enumerate(self.layers):
            code = level.nearest(residual, None if sq_norms is None else sq_norms[i])
            vector = F.embedding(code, level.embedding.weight)
            residual = residual - vector
            quantized = quantized + vector
            codes.append(code)
        if flat.requires_grad:
            quantized = flat + (quantized - flat).detach()
        lead = features.shape[:-1]
        return torch.stack(codes).reshape(len(codes), *lead), quantized.reshape(features.shape)


class TokenizerEncoder(Backbone):
    """Encoder backbone: multi-scale patch embedding, shared blocks, per-branch final norm."""

    def __init__(self, cfg: NeuroRVQConfig) -> None:
        super().__init__(cfg, cfg.depth_encoder, layer_scale=False)
        self.patch_embed = MultiScalePatchEmbed(cfg)
        for i in range(1, cfg.n_branches + 1):
            setattr(self, f"fc_norm_{i}", nn.LayerNorm(cfg.embed_dim, eps=1e-5))
        self.n_branches = cfg.n_branches

    def forward(
        self, patches: torch.Tensor, spatial_ix: torch.Tensor, time_ix: torch.Tensor
    ) -> torch.Tensor:
        feats = super().forward(self.patch_embed(patches), spatial_ix, time_ix)
        norms = [getattr(self, f"fc_norm_{i}") for i in range(1, self.n_branches + 1)]
        return branch_layer_norm(feats, norms)


class _CodeEmbed(nn.Module):
    """1x1 conv (checkpoint form) used as a linear map code_dim -> embed_dim."""

    def __init__(self, code_dim: int, dim: int) -> None:
        super().__init__()
        self.proj = nn.Conv2d(code_dim, dim, kernel_size=1)


class TokenizerDecoder(Backbone):
    """Decoder backbone from quantized vectors to one 800-dim feature per patch."""

    def __init__(self, cfg: NeuroRVQConfig) -> None:
        super().__init__(cfg, cfg.depth_decoder, layer_scale=False)
        for i in range(1, cfg.n_branches + 1):
            setattr(self, f"patch_embed_{i}", _CodeEmbed(cfg.code_dim, cfg.embed_dim))
            setattr(self, f"fc_norm_{i}", nn.LayerNorm(cfg.embed_dim, eps=1e-5))
        self.n_branches = cfg.n_branches

    def forward(
        self, quantized: torch.Tensor, spatial_ix: torch.Tensor, time_ix: torch.Tensor
    ) -> torch.Tensor:
        branches = range(1, self.n_branches + 1)
        projs = [getattr(self, f"patch_embed_{i}").proj for i in branches]
        weight = torch.stack([p.weight.flatten(1) for p in projs])
        bias = torch.stack([p.bias for p in projs])
        feats = super().forward(branch_linear(quantized, weight, bias), spatial_ix, time_ix)
        feats = branch_layer_norm(feats, [getattr(self, f"fc_norm_{i}") for i in branches])
        g, b, n, d = feats.shape
        return feats.permute(1, 2, 0, 3).reshape(b, n, g * d)


def _head(d_in: int, d_hidden: int, d_out: int, act: type[nn.Module], last: bool) -> nn.Sequential:
    layers = [nn.Linear(d_in, d_hidden), act(), nn.Linear(d_hidden, d_out)]
    return nn.Sequential(*layers, nn.Tanh()) if last else nn.Sequential(*layers)


def _dft_bases(n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Forward [cos | sin] (n, 2n) and inverse [cos; -sin]/n (2n, n) real DFT matrices."""
    k = torch.arange(n, dtype=torch.float64)
    angle = 2 * math.pi * torch.outer(k, k).remainder(n) / n
    cos, sin = torch.cos(angle), torch.sin(angle)
    forward = torch.cat((cos, sin), dim=1)
    inverse = torch.cat((cos, -sin), dim=0) / n
    return forward.float(), inverse.float()


def window_standardize(x: torch.Tensor) -> torch.Tensor:
    """z-score each window (dim 0) over all its values, unbiased variance, as the authors."""
    mean, std = _window_stats(x)
    return (x - mean) / std


def _window_stats(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    dims = tuple(range(1, x.dim()))
    var, mean = torch.var_mean(x, dim=dims, keepdim=True, correction=1)
    return mean, var.clamp(min=1e-8).sqrt()


class NeuroRVQTokenizer(nn.Module):
    """EEG patches -> 4 x 8 discrete codes per patch -> reconstructed microvolts."""

    def __init__(self, cfg: NeuroRVQConfig) -> None:
        super().__init__()
        self.config = cfg
        d, p, nb = cfg.embed_dim, cfg.patch_size, cfg.n_branches
        self.encoder = TokenizerEncoder(cfg)
        self.decoder = TokenizerDecoder(cfg)
        for i in range(1, nb + 1):
            setattr(
                self, f"quantize_{i}", ResidualQuantizer(cfg.n_levels, cfg.n_code, cfg.code_dim)
            )
            setattr(self, f"encode_task_layer_{i}", _head(d, d, cfg.code_dim, nn.Tanh, False))
        self.decode_task_layer_amplitude = _head(nb * d, d, p, nn.GELU, False)
        self.decode_task_layer_angle_sin = _head(nb * d, d, p, nn.Tanh, True)
        self.decode_task_layer_angle_cos = _head(nb * d, d, p, nn.Tanh, True)
        forward, inverse = _dft_bases(p)
        self.register_buffer("dft_forward", forward, persistent=False)
        self.register_buffer("dft_inverse", inverse, persistent=False)

    def _branches(self, name: str) -> list[nn.Module]:
        return [getattr(self, f"{name}_{i}") for i in range(1, self.config.n_branches + 1)]

    def encode_features(
        self, patches: torch.Tensor, spatial_ix: torch.Tensor, time_ix: torch.Tensor
    ) -> torch.Tensor:
        """Continuous per-branch features (branches, B, N, code_dim) that get quantized."""
        h = self.encoder(patches, spatial_ix, time_ix)
        heads = self._branches("encode_task_layer")
        w0 = torch.stack([m[0].weight for m in heads])
        b0 = torch.stack([m[0].bias for m in heads])
        w2 = torch.stack([m[2].weight for m in heads])
        b2 = torch.stack([m[2].bias for m in heads])
        return branch_linear(torch.tanh(branch_linear(h, w0, b0)), w2, b2)

    def code_sq_norms(self) -> torch.Tensor:
        """Squared norms of all codes (branches, levels, n_code), to reuse while weights are
        frozen (inference front ends compute them once; training must not keep them)."""
        return torch.stack(
            [
                torch.stack([(lv.embedding.weight**2).sum(1) for lv in q.layers])
                for q in self._branches("quantize")
            ]
        )

    def code_search(self, screen: str = "auto") -> CodeSearch:
        """An exact, faster search over the current codebooks for inference with frozen
        weights (see :class:`engines._nearest.CodeSearch`); ``quantize`` stays the reference."""
        quantizers = self._branches("quantize")
        books = [[lv.embedding.weight.detach() for lv in q.layers] for q in quantizers]
        return CodeSearch(books, self.code_sq_norms().detach(), screen)

    def quantize(
        self, features: torch.Tensor, sq_norms: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Codes (branches, levels, B, N) and quantized vectors (branches, B, N, code_dim)."""
        quantizers = self._branches("quantize")
        norms = [None] * len(quantizers) if sq_norms is None else sq_norms.unbind(0)
        codes, vectors = zip(
            *(
                q.quantize(f, n)
                for q, f, n in zip(quantizers, features.unbind(0), norms, strict=True)
            ),
            strict=True,
        )
        return torch.stack(codes), torch.stack(vectors)

    def forward(
        self,
        patches: torch.Tensor,
        spatial_ix: torch.Tensor,
        time_ix: torch.Tensor,
        sq_norms: torch.Tensor | None = None,
    ) -> torch.Tensor:
        return self.quantize(self.encode_features(patches, spatial_ix, time_ix), sq_norms)[0]

    def decode(
        self, quantized: torch.Tensor, spatial_ix: torch.Tensor, time_ix: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Standardized log-amplitude, sin and cos of the phase, each (B, N, patch_size)."""
        h = self.decoder(quantized, spatial_ix, time_ix)
        return (
            self.decode_task_layer_amplitude(h),
            self.decode_task_layer_angle_sin(h),
            self.decode_task_layer_angle_cos(h),
        )

    def log_amplitude(self, patches: torch.Tensor) -> torch.Tensor:
        """``log1p(|DFT(patch)|)`` (B, N, P), computed with the fixed DFT matrix."""
        p = patches.shape[-1]
        spec = patches @ self.dft_forward
        return torch.log1p(torch.sqrt(spec[..., :p].square() + spec[..., p:].square()))

    def amplitude_stats(self, patches: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and std (B, 1, 1) of the window's log-amplitude; needed to decode to uV."""
        return _window_stats(self.log_amplitude(patches))

    def spectrum_to_signal(
        self,
        amplitude: torch.Tensor,
        sin: torch.Tensor,
        cos: torch.Tensor,
        mean: torch.Tensor,
        std: torch.Tensor,
    ) -> torch.Tensor:
        """Real inverse DFT of ``expm1(amplitude * std + mean) * (cos + i sin)`` (B, N, P)."""
        # exp - 1 rather than expm1: same absolute error here, and expm1 has no ONNX op.
        amp = torch.exp(amplitude * std + mean) - 1
        return torch.cat((amp * cos, amp * sin), dim=-1) @ self.dft_inverse
