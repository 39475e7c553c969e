"""Reproduce the default models shipped in ``models/``, trained on sub-s01 only.

sub-s02 is held out: neither its signal nor its labels are used for training or for any
choice; it only gives the held-out numbers written into the model cards at the end. The
last ``VALIDATION_S`` seconds of sub-s01 are kept out of the tokenizer and FM training and
give their learning curves (``progress.jsonl`` in each stage's work directory). Stages:

1. tokenizer on continuous 4-patch windows of sub-s01;
2. FM masked-token pretraining on the same windows, with the tokenizer's codes;
3. checkerboard left vs right head, the whole FM fine-tuned on sub-s01's marker-locked 1 s
   epochs (``CHECKER_RECIPE``, chosen by blocked cross-validation inside sub-s01).

Run: ``python -m neurorvq_stream.training.train_defaults [--quick] [--max-hours H] [--out models]``.
Each stage saves its state every few minutes in ``--work-dir``; the same command resumes
an interrupted or time-limited run exactly where it stopped, and a finished stage is only
reloaded. The seeds are fixed.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch
from sklearn.metrics import balanced_accuracy_score

from neurorvq_stream.decoders._persistence import add_typicality_gate
from neurorvq_stream.decoders._typicality import TypicalityGate
from neurorvq_stream.engines import NeuroRVQConfig
from neurorvq_stream.engines._checkpoint import (
    build_foundation_model,
    save_checkpoint,
    shipped_models_dir,
)

from ._cards import write_card
from ._checkpointing import ResumeError, default_work_dir
from ._data import (
    CHECKER_CLASSES,
    PreprocessedRecording,
    bad_channels,
    continuous_windows,
    load_preprocessed,
    marker_epochs,
    repair_bad_channels,
)
from ._finetune import CHECKER_RECIPE, FinetuneConfig, finetune, predict_proba
from ._loop import Evaluation, Session, last_progress
from ._pretraining import (
    PretrainConfig,
    evaluate_pretraining,
    new_foundation_model,
    pretrain_foundation_model,
)
from ._tokenizer_training import (
    TokenizerTrainConfig,
    evaluate_tokenizer,
    new_tokenizer,
    train_tokenizer,
)

TOKENIZER_CONFIG = NeuroRVQConfig(
    depth_encoder=4, depth_decoder=2, n_code=256, code_dim=16, layer_scale=False
)
FM_DEPTH = 4
TOKENIZER_FILE = "neurorvq_tokenizer_small.safetensors"
FM_FILE = "neurorvq_fm_small.safetensors"
HEAD_FILE = "checker_lr_head.safetensors"
VALIDATION_S = 120.0
HEAD_WINDOW = {"mode": "markers", "marker_offset": 0.0, "marker_length": 1}
STAGES = ("tokenizer", "fm", "head")


@dataclass(frozen=True)
class Plan:
    """Step counts and recipes of one way of producing the defaults."""

    tokenizer: TokenizerTrainConfig
    pretrain: PretrainConfig
    finetune: FinetuneConfig
    eval_every: int
    held_out_windows: int


PLANS = {
    # About 4 h on a shared 2-core CPU (one thread); the cards record the time it took.
    "full": Plan(
        TokenizerTrainConfig(steps=3000, batch_size=8, max_channels=16, warmup_steps=100),
        PretrainConfig(steps=1500, batch_size=8, max_channels=16, warmup_steps=100),
        CHECKER_RECIPE,
        eval_every=250,
        held_out_windows=64,
    ),
    "quick": Plan(
        TokenizerTrainConfig(steps=100, batch_size=8, max_channels=16, warmup_steps=10),
        PretrainConfig(steps=60, batch_size=8, max_channels=16, warmup_steps=10),
        replace(CHECKER_RECIPE, epochs=1, warmup_epochs=0),
        eval_every=50,
        held_out_windows=32,
    ),
}


def _compute(device: str) -> str:
    """What the run ran on, for the model cards."""
    load = os.getloadavg()[1]
    return (f"{device}, {torch.get_num_threads()} torch thread(s), "
            f"{platform.machine()} with {os.cpu_count()} cores shared with other jobs "
            f"(load average {load:.1f} at the end)")


def _provenance(stage: str, plan_name: str, settings: dict, seconds: float,
                device: str, interpolated: tuple[str, ...] = ()) -> dict:
    data = "pylossless 0.2.0 sub-s01 (faceO task), live causal preprocessing, 200 Hz"
    if interpolated:
        data += f"; broken channels interpolated: {', '.join(interpolated)}"
    return {
        "trained_by": "training.train_defaults",
        "plan": plan_name,
        "stage": stage,
        "data": data,
        "held_out": "sub-s02 (never used for training or for any choice)",
        "settings": settings,
        "train_seconds": round(seconds, 1),
        "compute": _compute(device),
        "torch": torch.__version__,
    }


@dataclass(frozen=True)
class _Data:
    """sub-s01 split in time (training / validation) and the held-out sub-s02 windows.

    The tokenizer learns sub-s01 as recorded (it must reconstruct what a live stream
    delivers, broken electrodes included); the FM and the head learn from ``clean``,
    where sub-s01's broken electrodes (``bad_channels``: f4) are interpolated, so that
    one channel does not dominate every window's normalization.
    """

    channels: tuple[str, ...]
    bads: tuple[str, ...]
    train: np.ndarray
    validation: np.ndarray
    clean_train: np.ndarray
    clean_validation: np.ndarray
    held_out: np.ndarray
    clean: PreprocessedRecording
    s02: PreprocessedRecording

    @classmethod
    def load(cls, held_out_windows: int) -> _Data:
        s01, s02 = load_preprocessed("s01"), load_preprocessed("s02")
        bads = bad_channels(s01)
        clean = repair_bad_channels(s01, bads)
        split = float(s01.times[-1]) - VALIDATION_S
        # The held-out recording maps to the same electrodes (same cap); keep s01's order.
        keep = [s02.channels.index(c) for c in s01.channels]
        held = continuous_windows(s02, n_patches=4, hop_s=8.0, start_s=5.0)

        def split_windows(rec: PreprocessedRecording) -> tuple[np.ndarray, np.ndarray]:
            return (continuous_windows(rec, n_patches=4, hop_s=2.0, start_s=5.0, stop_s=split),
                    continuous_windows(rec, n_patches=4, hop_s=4.0, start_s=split))

        train, validation = split_windows(s01)
        clean_train, clean_validation = split_windows(clean)
        return cls(s01.channels, bads, train, validation, clean_train, clean_validation,
                   held[:held_out_windows][:, keep], clean, s02)


class _Stopped(Exception):
    """A stage ended by the session's time limit before its last step."""


def _finished(run_dir: Path, stage: str) -> float:
    """Training seconds of a finished stage; raises :class:`_Stopped` if it is not finished."""
    record = last_progress(run_dir)
    if record is None or record["step"] < record["of"]:
        done = 0 if record is None else record["step"]
        raise _Stopped(f"{stage} stopped at step {done} of its plan (--max-hours)")
    return float(record["train_seconds"])


def _remaining(deadline: float | None) -> float | None:
    return None if deadline is None else max(0.0, deadline - time.monotonic())


def _curve(history: list[dict], key: str) -> str:
    """``step: value`` pairs of an evaluated quantity, for the cards."""
    return ", ".join(f"{i + 1}: {h[key]:.3f}" for i, h in enumerate(history) if key in h)


def _train_tokenizer(plan: Plan, data: _Data, work: Path, args: argparse.Namespace,
                     deadline: float | None):
    tokenizer = new_tokenizer(TOKENIZER_CONFIG, seed=plan.tokenizer.seed)
    run_dir = work / "tokenizer"

    def validate() -> dict[str, float]:
        return evaluate_tokenizer(tokenizer, data.validation, data.channels, device=args.device)

    history = train_tokenizer(
        tokenizer, data.train, data.channels, plan.tokenizer, args.device,
        session=Session(run_dir, max_seconds=_remaining(deadline)),
        evaluation=Evaluation(validate, plan.eval_every),
    )
    seconds = _finished(run_dir, "tokenizer")
    args.out.mkdir(parents=True, exist_ok=True)
    path = save_checkpoint(
        tokenizer.cpu(), args.out / TOKENIZER_FILE, channels=data.channels,
        provenance=_provenance("tokenizer", args.plan, plan.tokenizer.as_dict(), seconds,
                               args.device),
    )
    held = evaluate_tokenizer(tokenizer, data.held_out, data.channels)
    tc = TOKENIZER_CONFIG
    write_card(
        path, "NeuroRVQ tokenizer (small), trained on sub-s01",
        f"Encoder depth {tc.depth_encoder}, decoder depth {tc.depth_decoder}, "
        f"{tc.n_branches} branches x {tc.n_levels} RVQ levels x {tc.n_code} codes of "
        f"{tc.code_dim} dims. Paper reference (v1, 76 M params): z-scored MSE 0.084 / 0.090.",
        {"Training": {"steps": len(history), "train seconds": round(seconds),
                      "compute": _compute(args.device),
                      **{f"loss {k} first/last": f"{history[0][k]:.3f} / {history[-1][k]:.3f}"
                         for k in ("amplitude", "phase", "signal", "commitment", "total")}},
         "Learning curve (z-scored MSE, sub-s01 last 120 s, not trained on)":
             {"step: value": _curve(history, "eval_zscored_mse")},
         "sub-s01 validation (last 120 s)": validate(),
         "sub-s02 (held out)": held},
    )
    print(f"tokenizer: held-out sub-s02 {held}", flush=True)
    return tokenizer


def _pretrain(plan: Plan, tokenizer, data: _Data, work: Path, args: argparse.Namespace,
              deadline: float | None) -> Path:
    fm = new_foundation_model(tokenizer, FM_DEPTH, seed=plan.pretrain.seed)
    run_dir = work / "fm"

    def validate() -> dict[str, float]:
        return evaluate_pretraining(fm, tokenizer, data.clean_validation, data.channels,
                                    plan.pretrain.mask_ratio, device=args.device)

    history = pretrain_foundation_model(
        fm, tokenizer, data.clean_train, data.channels, plan.pretrain, args.device,
        session=Session(run_dir, max_seconds=_remaining(deadline)),
        evaluation=Evaluation(validate, plan.eval_every),
    )
    seconds = _finished(run_dir, "FM pretraining")
    path = save_checkpoint(
        fm.cpu(), args.out / FM_FILE, channels=data.channels,
        provenance=_provenance("fm-pretraining", args.plan, plan.pretrain.as_dict(), seconds,
                               args.device, data.bads),
    )
    n_code = tokenizer.config.n_code
    validation = validate()
    write_card(
        path, "NeuroRVQ foundation model (small), masked-token pretrained on sub-s01",
        f"Depth {FM_DEPTH}, layer scale, 32 heads predicting the small tokenizer's codes "
        "(pretraining form: fine-tune it with a head before classifying). Chance level of "
        f"the masked-code loss: ln {n_code} = {np.log(n_code):.2f}; of the accuracy: "
        f"{1 / n_code:.4f}.",
        {"Training": {"steps": len(history), "train seconds": round(seconds),
                      "compute": _compute(args.device),
                      "masked-code loss first/last 50 steps":
                          f"{np.mean([h['loss'] for h in history[:50]]):.3f} / "
                          f"{np.mean([h['loss'] for h in history[-50:]]):.3f}"},
         "Learning curve (masked-code loss, sub-s01 last 120 s, not trained on)":
             {"step: value": _curve(history, "eval_masked_code_loss")},
         "sub-s01 validation (last 120 s)": validation},
    )
    print(f"FM: sub-s01 validation {validation}", flush=True)
    return path


def _fine_tune(plan: Plan, fm_path: Path, data: _Data, work: Path, args: argparse.Namespace,
               deadline: float | None) -> None:
    offset, length = HEAD_WINDOW["marker_offset"], HEAD_WINDOW["marker_length"]
    x_train, y_train, _ = marker_epochs(data.clean, CHECKER_CLASSES, offset, length)
    x_held, y_held, _ = marker_epochs(data.s02, CHECKER_CLASSES, offset, length)
    x_held = x_held[:, [data.s02.channels.index(c) for c in data.channels]]
    head = build_foundation_model(fm_path, n_out=1, pretraining_heads=False)
    run_dir = work / "head"
    losses = finetune(head, x_train, y_train, data.channels, 2, plan.finetune, args.device,
                      session=Session(run_dir, max_seconds=_remaining(deadline)))
    seconds = _finished(run_dir, "fine-tuning")
    train_acc = balanced_accuracy_score(
        y_train, predict_proba(head, x_train, data.channels).argmax(1))
    held_acc = balanced_accuracy_score(
        y_held, predict_proba(head, x_held, data.channels).argmax(1))
    path = save_checkpoint(
        head.cpu(), args.out / HEAD_FILE, channels=data.channels, classes=CHECKER_CLASSES,
        provenance=_provenance("fine-tuning", args.plan, plan.finetune.as_dict(), seconds,
                               args.device, data.bads) | {"window": HEAD_WINDOW},
    )
    # Without it a window of noise comes out as confident as a real epoch.
    add_typicality_gate(path, TypicalityGate().fit(x_train))
    write_card(
        path, "Checkerboard left vs right head (FM small fine-tuned, sub-s01)",
        "Binary head (one logit, sigmoid: p = P(checker-right)) on the small FM, the whole "
        "network fine-tuned; input: 1 s marker-locked epochs from the checkerboard onset.",
        {"Training": {"epochs (sub-s01)": len(y_train), "fine-tuning epochs": len(losses),
                      "head only": plan.finetune.head_only,
                      "mirror augmentation": plan.finetune.mirror,
                      "loss first/last": f"{losses[0]:.3f} / {losses[-1]:.3f}",
                      "train seconds": round(seconds), "compute": _compute(args.device)},
         "Balanced accuracy": {"sub-s01 (training)": float(train_acc),
                               "sub-s02 (held out)": float(held_acc),
                               "held-out epochs": len(y_held)}},
    )
    print(f"checker head: train {train_acc:.3f}, held-out sub-s02 {held_acc:.3f}", flush=True)


def main(argv: list[str] | None = None) -> None:
    """Train, save and describe the three default models (resume errors: one message)."""
    try:
        _main(argv)
    except ResumeError as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)
    except _Stopped as stop:
        print(f"{stop}; run the same command again to continue.", flush=True)


def _main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", dest="plan", action="store_const", const="quick",
                        default="full", help="a few hundred steps (minutes)")
    parser.add_argument("--out", type=Path, default=shipped_models_dir())
    parser.add_argument("--work-dir", type=Path, default=default_work_dir(),
                        help="resumable run state and progress logs (default: per-user "
                             "cache, or $NEURORVQ_TRAIN_DIR)")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch CPU threads (1 is fastest on a heavily shared CPU)")
    parser.add_argument("--max-hours", type=float, default=None,
                        help="end this session after that long (state saved; rerun resumes)")
    parser.add_argument("--stop-after", choices=STAGES, default=STAGES[-1],
                        help="last stage to run in this session (earlier finished stages "
                             "are only reloaded)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    deadline = None if args.max_hours is None else time.monotonic() + 3600 * args.max_hours
    plan = PLANS[args.plan]
    work = args.work_dir / args.plan
    print(f"progress: {work}/<stage>/progress.jsonl", flush=True)
    data = _Data.load(plan.held_out_windows)
    print(f"sub-s01: {len(data.train)} training + {len(data.validation)} validation windows, "
          f"{len(data.channels)} channels; interpolated for the FM and head: {data.bads}",
          flush=True)
    tokenizer = _train_tokenizer(plan, data, work, args, deadline)
    if args.stop_after == "tokenizer":
        return
    fm_path = _pretrain(plan, tokenizer, data, work, args, deadline)
    if args.stop_after == "fm":
        return
    _fine_tune(plan, fm_path, data, work, args, deadline)


if __name__ == "__main__":
    main()
