"""NeuroRVQ foundation model: the backbone with layer scale, classification and
masked-token pretraining heads.

Public class ``NeuroRVQFoundationModel(cfg)`` (attribute names match the official keys):

- ``forward_features(patches (B, N, P), spatial_ix (B, N), time_ix (B, N), mask=None)
  -> (branches, B, N, D)``: per-token features; ``mask`` (B, N) bool replaces the masked
  patch embeddings by ``mask_token`` (pretraining form only).
- ``forward(patches, spatial_ix, time_ix) -> logits (B, n_out)``: mean over tokens of the
  4 concatenated branches -> ``fc_norm`` -> ``head`` (fine-tuned form only).
- ``pretraining_logits(features) -> (branches, levels, B, N, n_code)``: ``norm_pre`` then
  ``head_pre_{levels*(branch-1) + level}`` (level 1-based), the masked-code predictions.
"""

from __future__ import annotations

import torch
from torch import nn

from ._config import NeuroRVQConfig
from ._layers import Backbone, MultiScalePatchEmbed


class NeuroRVQFoundationModel(Backbone):
    """Foundation model in classification form (``n_out > 0``) and/or pretraining form."""

    def __init__(self, cfg: NeuroRVQConfig) -> None:
        super().__init__(cfg, cfg.depth, layer_scale=cfg.layer_scale)
        self.config = cfg
        d, nb = cfg.embed_dim, cfg.n_branches
        self.patch_embed = MultiScalePatchEmbed(cfg)
        if cfg.branch_norms:  # present in the official files, unused by the heads
            for i in range(1, nb + 1):
                setattr(self, f"fc_norm_{i}", nn.LayerNorm(d, eps=1e-5))
        if cfg.n_out > 0:
            self.fc_norm = nn.LayerNorm(nb * d, eps=1e-5)
            self.head = nn.Linear(nb * d, cfg.n_out)
        if cfg.pretraining_heads:
            self.mask_token = nn.Parameter(torch.zeros(1, 1, d))
            self.norm_pre = nn.LayerNorm(d, eps=1e-5)
            for i in range(1, nb * cfg.n_levels + 1):
                setattr(self, f"head_pre_{i}", nn.Linear(d, cfg.n_code))

    def forward_features(
        self,
        patches: torch.Tensor,
        spatial_ix: torch.Tensor,
        time_ix: torch.Tensor,
        mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Per-branch token features after the blocks, cls dropped, no final norm."""
        tokens = self.patch_embed(patches)
        if mask is not None:
            if not self.config.pretraining_heads:
                raise ValueError(
                    "mask given, but this model has no mask_token (no pretraining "
                    "heads); build it with pretraining_heads=True."
                )
            w = mask.to(tokens.dtype).unsqueeze(-1)
            tokens = tokens * (1 - w) + self.mask_token * w
        return Backbone.forward(self, tokens, spatial_ix, time_ix)

    def forward(
        self, patches: torch.Tensor, spatial_ix: torch.Tensor, time_ix: torch.Tensor
    ) -> torch.Tensor:
        if self.config.n_out <= 0:
            raise ValueError(
                "This foundation model has no classification head (n_out=0); "
                "load a fine-tuned checkpoint or give n_out to add a fresh head."
            )
        return self.head(self.fc_norm(self.pooled_features(patches, spatial_ix, time_ix)))

    def pooled_features(
        self, patches: torch.Tensor, spatial_ix: torch.Tensor, time_ix: torch.Tensor
    ) -> torch.Tensor:
        """The (B, branches*D) vector the head reads: token mean of the concatenated branches.

        Public so that head-only fine-tuning can compute it once instead of every step.
        """
        feats = self.forward_features(patches, spatial_ix, time_ix)
        g, b, _, d = feats.shape
        return feats.mean(dim=2).transpose(0, 1).reshape(b, g * d)

    def pretraining_logits(self, features: torch.Tensor) -> torch.Tensor:
        """Code logits for every (branch, level) from (branches, B, N, D) features."""
        h = self.norm_pre(features)
        levels = self.config.n_levels
        out = [
            torch.stack(
                [getattr(self, f"head_pre_{levels * br + lv + 1}")(h[br]) for lv in range(levels)]
            )
            for br in range(h.shape[0])
        ]
        return torch.stack(out)
