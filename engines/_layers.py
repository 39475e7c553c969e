"""Building blocks shared by the NeuroRVQ tokenizer and foundation model (timm/LaBraM style).

Public classes (attribute names match the official checkpoint keys):

- ``Attention(dim, num_heads)``: ``qkv`` (no bias of its own; ``q_bias``/``v_bias``),
  per-head ``q_norm``/``k_norm``, SDPA, ``proj``. ``forward(x (G, N, D)) -> (G, N, D)``.
- ``Mlp(dim, hidden)``: ``fc1`` -> exact GELU -> ``fc2``.
- ``Block(dim, num_heads, hidden, layer_scale)``: pre-norm block, optional ``gamma_1/2``.
- ``MultiScalePatchEmbed(cfg)``: the 4 temporal conv branches, run as one grouped conv.
  ``forward(patches (B, N, P)) -> (n_branches, B, N, D)``.
- ``Backbone(cfg, depth, layer_scale)``: ``cls_token``, ``pos_embed``, ``time_embed``,
  ``blocks``. ``forward(tokens (n_branches, B, N, D), spatial_ix (B, N), time_ix (B, N))
  -> (n_branches, B, N, D)``: all branches go through the shared blocks as one batch and
  the cls token is dropped at the end.
- ``branch_layer_norm(x, norms)`` and ``branch_linear(x, linears)``: one LayerNorm / Linear
  per branch applied to a stacked ``(n_branches, ...)`` tensor in a single op.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ._config import NeuroRVQConfig


class Attention(nn.Module):
    """Multi-head self-attention with q/k LayerNorm, as in the authors' blocks."""

    def __init__(self, dim: int, num_heads: int) -> None:
        super().__init__()
        self.num_heads = num_heads
        head_dim = dim // num_heads
        self.qkv = nn.Linear(dim, 3 * dim, bias=False)
        self.q_bias = nn.Parameter(torch.zeros(dim))
        self.v_bias = nn.Parameter(torch.zeros(dim))
        self.q_norm = nn.LayerNorm(head_dim, eps=1e-6)
        self.k_norm = nn.LayerNorm(head_dim, eps=1e-6)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        g, n, d = x.shape
        bias = torch.cat((self.q_bias, torch.zeros_like(self.q_bias), self.v_bias))
        qkv = F.linear(x, self.qkv.weight, bias).reshape(g, n, 3, self.num_heads, -1)
        q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)
        out = F.scaled_dot_product_attention(self.q_norm(q), self.k_norm(k), v)
        return self.proj(out.transpose(1, 2).reshape(g, n, d))


class Mlp(nn.Module):
    """Two-layer feed-forward network with exact (erf) GELU."""

    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(x)))


class Block(nn.Module):
    """Pre-norm transformer block; ``layer_scale`` adds the FM's ``gamma_1``/``gamma_2``."""

    def __init__(
        self, dim: int, num_heads: int, hidden: int, layer_scale: bool, init_scale: float = 0.1
    ) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=1e-5)
        self.attn = Attention(dim, num_heads)
        self.norm2 = nn.LayerNorm(dim, eps=1e-5)
        self.mlp = Mlp(dim, hidden)
        if layer_scale:
            self.gamma_1 = nn.Parameter(torch.full((dim,), init_scale))
            self.gamma_2 = nn.Parameter(torch.full((dim,), init_scale))
        else:
            self.gamma_1 = self.gamma_2 = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.gamma_1 is None:
            x = x + self.attn(self.norm1(x))
            return x + self.mlp(self.norm2(x))
        x = x + self.gamma_1 * self.attn(self.norm1(x))
        return x + self.gamma_2 * self.mlp(self.norm2(x))


class MultiScalePatchEmbed(nn.Module):
    """Four temporal conv branches turning each 200-sample patch into one token per branch.

    Each branch keeps its own convolutions (checkpoint keys ``conv1_i``, ``norm1_i``, ...);
    their outputs are concatenated along channels so that each GroupNorm/GELU/pooling stage
    runs once for all branches.
    """

    def __init__(self, cfg: NeuroRVQConfig) -> None:
        super().__init__()
        ch = cfg.conv_channels
        self.n_branches = cfg.n_branches
        self.groups = cfg.conv_groups
        self.eps = 1e-5
        for i, (k1, k2) in enumerate(zip(cfg.kernels1, cfg.kernels2, strict=True), start=1):
            setattr(self, f"conv1_{i}", nn.Conv2d(1, ch, (1, k1), padding=(0, k1 // 2)))
            setattr(self, f"norm1_{i}", nn.GroupNorm(cfg.conv_groups, ch, eps=self.eps))
            setattr(self, f"conv2_{i}", nn.Conv2d(ch, ch, (1, k2), padding=(0, k2 // 2)))
            setattr(self, f"norm2_{i}", nn.GroupNorm(cfg.conv_groups, ch, eps=self.eps))

    def _branches(self, name: str) -> list[nn.Module]:
        return [getattr(self, f"{name}_{i}") for i in range(1, self.n_branches + 1)]

    def _norm(self, h: torch.Tensor, name: str) -> torch.Tensor:
        """All branches' GroupNorms as one GroupNorm (groups never straddle branches)."""
        norms = self._branches(name)
        weight = torch.cat([m.weight for m in norms])
        bias = torch.cat([m.bias for m in norms])
        return F.group_norm(h, self.groups * self.n_branches, weight, bias, self.eps)

    def forward(self, patches: torch.Tensor) -> torch.Tensor:
        b, n, _ = patches.shape
        image = patches.unsqueeze(1)
        h = torch.cat([conv(image) for conv in self._branches("conv1")], dim=1)
        h = F.avg_pool2d(F.gelu(self._norm(h, "norm1")), (1, 2))
        parts = h.chunk(self.n_branches, dim=1)
        h = torch.cat([conv(x) for conv, x in zip(self._branches("conv2"), parts, strict=True)], 1)
        h = F.avg_pool2d(F.gelu(self._norm(h, "norm2")), (1, 4))
        # (B, branches*ch, N, T) -> (branches, B, N, T*ch): tokens are flattened time-major.
        h = h.reshape(b, self.n_branches, -1, n, h.shape[-1]).permute(1, 0, 3, 4, 2)
        return h.reshape(self.n_branches, b, n, -1)


class Backbone(nn.Module):
    """cls token + spatial/temporal embeddings + transformer blocks, shared by all branches."""

    def __init__(self, cfg: NeuroRVQConfig, depth: int, layer_scale: bool) -> None:
        super().__init__()
        d = cfg.embed_dim
        self.cls_token = nn.Parameter(torch.zeros(1, 1, d))
        self.pos_embed = nn.Parameter(torch.zeros(cfg.n_positions, d))
        self.time_embed = nn.Parameter(torch.zeros(cfg.n_times, d))
        self.blocks = nn.ModuleList(
            Block(d, cfg.num_heads, cfg.mlp_hidden, layer_scale) for _ in range(depth)
        )

    def forward(
        self, tokens: torch.Tensor, spatial_ix: torch.Tensor, time_ix: torch.Tensor
    ) -> torch.Tensor:
        g, b, n, d = tokens.shape
        tokens = tokens + (self.pos_embed[spatial_ix] + self.time_embed[time_ix])
        # The cls token gets pos_embed row 0 (the row of electrode a1), as in the original.
        cls = (self.cls_token[0] + self.pos_embed[:1]).expand(g * b, 1, d)
        x = torch.cat((cls, tokens.reshape(g * b, n, d)), dim=1)
        for block in self.blocks:
            x = block(x)
        return x[:, 1:].reshape(g, b, n, d)


def branch_layer_norm(x: torch.Tensor, norms: Sequence[nn.LayerNorm]) -> torch.Tensor:
    """Apply ``norms[i]`` to ``x[i]`` for a stacked (branches, ..., D) tensor in one op."""
    shape = (len(norms),) + (1,) * (x.dim() - 2) + (-1,)
    weight = torch.stack([n.weight for n in norms]).reshape(shape)
    bias = torch.stack([n.bias for n in norms]).reshape(shape)
    return F.layer_norm(x, norms[0].normalized_shape, eps=norms[0].eps) * weight + bias


def branch_linear(x: torch.Tensor, weights: torch.Tensor, biases: torch.Tensor) -> torch.Tensor:
    """Per-branch ``x[i] @ weights[i].T + biases[i]`` for (branches, ..., in) inputs."""
    g = x.shape[0]
    flat = x.reshape(g, -1, x.shape[-1])
    out = torch.baddbmm(biases.unsqueeze(1), flat, weights.transpose(1, 2))
    return out.reshape(*x.shape[:-1], weights.shape[1])
