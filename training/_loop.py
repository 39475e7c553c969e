"""The one step loop every trainer runs: progress, limits, resumable state, evaluation.

A trainer supplies ``step(i) -> {name: value}`` (one optimisation step, whatever it means
for that model) and the objects whose state a resumed run needs (modules, optimizers,
random generators). The loop owns the rest: it resumes from the run directory, stops at
the planned number of steps, at ``until`` or after ``max_seconds`` (saving first, so the
next session continues exactly where this one stopped), saves every ``save_every`` steps,
calls the evaluation hook every ``eval_every`` steps and appends one JSON line per
``log_every`` steps to ``progress.jsonl`` in the run directory.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from ._checkpointing import ResumeError, load_state, save_state

StepFn = Callable[[int], dict[str, float]]
Stateful = torch.nn.Module | torch.optim.Optimizer | torch.Generator
STATE_FILE = "state.safetensors"
LOG_FILE = "progress.jsonl"


@dataclass(frozen=True)
class Session:
    """Where a run keeps its state and how far this session goes.

    ``run_dir`` None: nothing is saved or resumed. ``until`` ends the session after that
    step, ``max_seconds`` after that much wall-clock time (both save the state first).
    """

    run_dir: Path | None = None
    save_every: int = 100
    until: int | None = None
    max_seconds: float | None = None
    log_every: int = 10


@dataclass(frozen=True)
class Evaluation:
    """A hook run every ``every`` steps and after the last one; its numbers go in the history.

    The loop puts the models back in training mode afterwards.
    """

    run: Callable[[], dict[str, float]]
    every: int


def run_settings(config: dict, data: torch.Tensor) -> dict:
    """``config`` plus a fingerprint of the training data: what identifies a run on resume."""
    digest = hashlib.sha256(data.detach().cpu().numpy().tobytes()).hexdigest()[:16]
    return {**config, "data": f"{tuple(data.shape)} sha256:{digest}"}


def _state_of(obj: Stateful) -> object:
    if isinstance(obj, torch.Generator):
        return obj.get_state()
    return obj.state_dict()


def _restore(obj: Stateful, value: object) -> None:
    if isinstance(obj, torch.Generator):
        obj.set_state(value)
    else:
        obj.load_state_dict(value)


def _resume(
    path: Path, parts: Mapping[str, Stateful], settings: dict
) -> tuple[int, list[dict[str, float]], float]:
    loaded = load_state(path)
    if loaded is None:
        return 0, [], 0.0
    state, info = loaded
    if info.get("settings") != settings:
        changed = sorted(
            k for k in set(settings) | set(info.get("settings") or {})
            if (info.get("settings") or {}).get(k) != settings.get(k)
        )
        raise ResumeError(
            f"Cannot resume from {path}: it was saved by a run with other settings "
            f"(differing: {', '.join(changed)}). Delete it to start afresh, or give another "
            "work directory for the new settings."
        )
    if set(state) != {*parts, "torch_rng"}:
        raise ResumeError(
            f"Cannot resume from {path}: it holds {sorted(state)}, this run needs "
            f"{sorted({*parts, 'torch_rng'})}. Delete it to start afresh."
        )
    for name, obj in parts.items():
        _restore(obj, state[name])
    torch.set_rng_state(state["torch_rng"])
    return int(info["step"]), list(info["history"]), float(info["seconds"])


def _save(path: Path, parts: Mapping[str, Stateful], settings: dict, step: int,
          history: list[dict[str, float]], seconds: float) -> None:
    state = {name: _state_of(obj) for name, obj in parts.items()}
    state["torch_rng"] = torch.get_rng_state()
    save_state(path, state, {"settings": settings, "step": step, "history": history,
                             "seconds": seconds})


def last_progress(run_dir: Path) -> dict | None:
    """The last record of a run's ``progress.jsonl`` (``train_seconds``: all sessions)."""
    path = Path(run_dir) / LOG_FILE
    if not path.is_file():
        return None
    lines = path.read_text(encoding="utf-8").splitlines()
    return json.loads(lines[-1]) if lines else None


def _append_log(path: Path, record: dict) -> None:
    with path.open("a", encoding="utf-8") as handle:
        handle.write(json.dumps(record) + "\n")


def run_steps(
    name: str, total: int, step: StepFn, parts: Mapping[str, Stateful], settings: dict,
    session: Session | None = None, evaluation: Evaluation | None = None,
    progress: bool = True,
) -> list[dict[str, float]]:
    """Run steps ``[resumed step, total)`` of ``step`` and return the whole history.

    ``settings`` (JSON) identify the run: a saved state written with other settings is
    refused rather than silently continued. History entries are ``step``'s numbers plus,
    at evaluated steps, the hook's numbers prefixed with ``eval_``.
    """
    session = session or Session()
    modules = [p for p in parts.values() if isinstance(p, torch.nn.Module)]
    state_path = log_path = None
    start, history, earlier = 0, [], 0.0
    if session.run_dir is not None:
        state_path, log_path = session.run_dir / STATE_FILE, session.run_dir / LOG_FILE
        start, history, earlier = _resume(state_path, parts, settings)
        session.run_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    stop = total if session.until is None else min(session.until, total)
    began = time.monotonic()
    bar = tqdm(range(start, stop), desc=name, disable=not progress, initial=start,
               total=total, dynamic_ncols=True)
    for i in bar:
        for module in modules:
            module.train()
        numbers = step(i)
        done = i + 1
        if evaluation is not None and (done % evaluation.every == 0 or done == total):
            numbers = numbers | {f"eval_{k}": v for k, v in evaluation.run().items()}
        history.append(numbers)
        bar.set_postfix({k: f"{v:.3f}" for k, v in list(numbers.items())[:3]})
        elapsed = time.monotonic() - began
        out_of_time = session.max_seconds is not None and elapsed >= session.max_seconds
        last = done == stop or out_of_time
        if log_path is not None and (done % session.log_every == 0 or last):
            recent = history[-session.log_every :]
            keys = [k for k in recent[-1] if not k.startswith("eval_")]
            _append_log(log_path, {
                "run": name, "step": done, "of": total,
                "train_seconds": round(earlier + elapsed, 1),
                **{k: float(np.mean([h[k] for h in recent if k in h])) for k in keys},
                **{k: v for k, v in numbers.items() if k.startswith("eval_")},
            })
        if state_path is not None and (done % session.save_every == 0 or last):
            _save(state_path, parts, settings, done, history, earlier + elapsed)
        if out_of_time:
            break
    bar.close()
    for module in modules:
        module.eval()
    return history
