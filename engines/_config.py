"""Hyper-parameters of the NeuroRVQ networks, read from checkpoint shapes.

The published ``v1`` values are the defaults; :mod:`engines._checkpoint` fills the fields a
state_dict determines (depths, codebook size, code size, outputs, layer scale, kernels) so a
reduced or retrained model loads without a hand-written config.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class NeuroRVQConfig:
    """Shape of one tokenizer or foundation model (fields unused by a network are ignored).

    ``n_positions`` is the number of ``pos_embed`` rows (104 electrodes + 1), ``n_times``
    the number of ``time_embed`` rows, i.e. the largest number of time patches per window.
    """

    patch_size: int = 200
    n_times: int = 256
    n_positions: int = 105
    embed_dim: int = 200
    num_heads: int = 10
    mlp_hidden: int = 800
    conv_channels: int = 8
    conv_groups: int = 4
    kernels1: tuple[int, ...] = (21, 15, 9, 5)
    kernels2: tuple[int, ...] = (9, 7, 5, 3)
    depth_encoder: int = 12
    depth_decoder: int = 3
    n_code: int = 8192
    code_dim: int = 128
    n_levels: int = 8
    depth: int = 12
    layer_scale: bool = True
    n_out: int = 0
    branch_norms: bool = True
    pretraining_heads: bool = False

    @property
    def n_branches(self) -> int:
        """Number of parallel temporal branches (one per first-stage kernel)."""
        return len(self.kernels1)

    def to_dict(self) -> dict:
        """Plain JSON-ready form, for sidecars and logs."""
        return asdict(self)
