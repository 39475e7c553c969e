"""Resumable training state: a run interrupted at any point restarts from its last save."""

from __future__ import annotations

import os
import random
from pathlib import Path

import numpy as np
import torch


def seed_everything(seed: int) -> None:
    """Fix Python, NumPy and torch seeds so that a run is repeatable on the same machine."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def save_state(path: Path, **state: object) -> None:
    """Write ``state`` atomically (tmp file + rename), so a kill never leaves a broken file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save({**state, "torch_rng": torch.get_rng_state()}, tmp)
    os.replace(tmp, path)


def load_state(path: Path | None) -> dict | None:
    """The saved state, or None when there is nothing to resume."""
    if path is None or not Path(path).is_file():
        return None
    state = torch.load(path, map_location="cpu", weights_only=False)
    torch.set_rng_state(state.pop("torch_rng"))
    return state
