"""Random training batches: windows, a random channel subset and a random number of patches.

Cropping keeps a CPU step cheap (attention cost grows with channels x patches), teaches the
models every temporal-embedding row a live window can use (A = 1 ERP epochs up to A = 4
sliding windows, right-aligned), and makes them robust to caps with fewer electrodes.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch


def random_batch(
    data: torch.Tensor, channels: Sequence[str], batch_size: int, max_channels: int,
    generator: torch.Generator,
) -> tuple[torch.Tensor, list[str]]:
    """(batch, c, a*200) crop of (n, C, A*200) windows and the names of its c channels."""
    n, c, t = data.shape
    idx = torch.randint(n, (batch_size,), generator=generator)
    keep = min(max_channels, c)
    chans = torch.randperm(c, generator=generator)[:keep].sort().values
    n_patches = int(torch.randint(1, t // 200 + 1, (1,), generator=generator))
    x = data[idx][:, chans, t - n_patches * 200 :]
    return x, [channels[i] for i in chans.tolist()]
