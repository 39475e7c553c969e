"""Resumable training state that loads without executing anything.

A run's state is one safetensors file: the tensors (weights, optimizer moments, random
generator states) in the body, everything else (step, history, settings, the nesting of
the optimizer's state) as JSON in its header. Neither part can run code when read, unlike
a pickle, so a file planted in the state directory is at worst refused. The default
directory is per user (``platformdirs`` user cache, or ``$NEURORVQ_TRAIN_DIR``), never a
predictable path under the shared temporary directory.
"""

from __future__ import annotations

import json
import os
import random
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import platformdirs
import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

FORMAT = "neurorvq-stream training state v1"
ENV_DIR = "NEURORVQ_TRAIN_DIR"
_HEADER_KEY = "neurorvq_training_state"


class ResumeError(RuntimeError):
    """A training state that cannot be resumed; the message says which file and what to do."""


def seed_everything(seed: int) -> None:
    """Fix Python, NumPy and torch seeds so that a run is repeatable on the same machine."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def default_work_dir() -> Path:
    """Where runs keep their resumable state: ``$NEURORVQ_TRAIN_DIR`` or the user cache."""
    override = os.environ.get(ENV_DIR)
    if override:
        return Path(override).expanduser()
    return Path(platformdirs.user_cache_dir("neurorvq-stream")) / "training"


def _encode(value: object, key: str, tensors: dict[str, torch.Tensor]) -> object:
    """JSON form of a state_dict-like tree; tensors move to ``tensors`` under ``key``."""
    if torch.is_tensor(value):
        tensors[key] = value.detach().cpu().contiguous()
        return {"tensor": key}
    if isinstance(value, Mapping):
        if all(isinstance(k, str) for k in value):
            return {"dict": {k: _encode(v, f"{key}.{k}", tensors) for k, v in value.items()}}
        if all(isinstance(k, int) for k in value):
            return {"int_dict": [[k, _encode(v, f"{key}.{k}", tensors)] for k, v in value.items()]}
    if isinstance(value, list | tuple):
        kind = "list" if isinstance(value, list) else "tuple"
        return {kind: [_encode(v, f"{key}.{i}", tensors) for i, v in enumerate(value)]}
    if value is None or isinstance(value, bool | int | float | str):
        return {"value": value}
    raise TypeError(f"Cannot store {type(value).__name__} at {key!r} in a training state.")


def _decode(node: object, tensors: Mapping[str, torch.Tensor]) -> object:
    """Inverse of :func:`_encode`."""
    if not isinstance(node, dict) or len(node) != 1:
        raise ValueError(f"unexpected node {str(node)[:80]}")
    ((kind, body),) = node.items()
    if kind == "tensor":
        return tensors[body]
    if kind == "dict":
        return {k: _decode(v, tensors) for k, v in body.items()}
    if kind == "int_dict":
        return {int(k): _decode(v, tensors) for k, v in body}
    if kind in ("list", "tuple"):
        items = [_decode(v, tensors) for v in body]
        return items if kind == "list" else tuple(items)
    if kind == "value":
        return body
    raise ValueError(f"unknown node kind {kind!r}")


def save_state(path: Path, state: Mapping[str, object], info: Mapping[str, object]) -> None:
    """Write ``state`` (state_dict-like trees) and JSON ``info`` atomically to ``path``.

    Written to a temporary file in the same directory then renamed, so a kill never leaves
    a broken file; the directory is created private to the user.
    """
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tensors: dict[str, torch.Tensor] = {}
    layout = _encode(dict(state), "state", tensors)
    header = json.dumps({"format": FORMAT, "layout": layout, "info": dict(info)})
    tmp = path.with_name(path.name + ".tmp")
    save_file(tensors, str(tmp), metadata={_HEADER_KEY: header})
    os.replace(tmp, path)


def _refuse(path: Path, why: str) -> ResumeError:
    return ResumeError(
        f"Cannot resume from {path}: {why}. Nothing was loaded from it. Delete that file to "
        f"start the run afresh, or give another work directory (--work-dir or ${ENV_DIR})."
    )


def load_state(path: Path) -> tuple[dict[str, object], dict[str, object]] | None:
    """``(state, info)`` saved by :func:`save_state`, or None when ``path`` does not exist.

    Anything else at ``path`` (a pickle, another program's file, a damaged file, a file
    another user put there) raises :class:`ResumeError` without running any of its content.
    """
    path = Path(path)
    if not path.exists():
        return None
    if not path.is_file():
        raise _refuse(path, "it is not a file")
    if hasattr(os, "getuid") and path.stat().st_uid != os.getuid():
        raise _refuse(path, "it belongs to another user")
    try:
        with safe_open(str(path), framework="pt", device="cpu") as handle:
            header = (handle.metadata() or {}).get(_HEADER_KEY)
            tensors = {key: handle.get_tensor(key) for key in handle.keys()}  # noqa: SIM118
    except (SafetensorError, OSError, ValueError) as err:
        raise _refuse(path, f"it is not a training state written by this program ({err})") \
            from None
    try:
        content = json.loads(header) if header else {}
        if content.get("format") != FORMAT:
            raise ValueError("no training-state header")
        state = _decode(content["layout"], tensors)
    except (ValueError, KeyError, TypeError) as err:
        raise _refuse(path, f"its header is not a {FORMAT} ({err})") from None
    return state, content["info"]
