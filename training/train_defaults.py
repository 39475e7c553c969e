"""Reproduce the default models shipped in ``models/``, trained on sub-s01 only.

sub-s02 is held out: neither its signal nor its labels are used for training; it only
serves for the held-out numbers written into the model cards. Steps:

1. tokenizer (encoder depth 4, decoder depth 2, 4 x 8 x 256 codes of 32 dims) on
   continuous 4-patch windows of sub-s01;
2. FM (depth 4) masked-token pretraining on the same windows, with the tokenizer's codes;
3. checkerboard left vs right head fine-tuned from the FM on sub-s01's marker-locked 1 s
   epochs (published recipe; ``--quick`` trains the head only).

Run: ``python -m training.train_defaults [--quick] [--out models] [--device cpu|cuda]``.
Interrupted runs resume from ``--work-dir``; the seeds are fixed.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from sklearn.metrics import balanced_accuracy_score

from engines import NeuroRVQConfig, build_foundation_model, save_checkpoint

from ._cards import write_card
from ._checkpointing import ResumeError, default_work_dir
from ._data import CHECKER_CLASSES, continuous_windows, load_recording, marker_epochs
from ._finetune import HEAD_RECIPE, FinetuneConfig, finetune, predict_proba
from ._loop import Session
from ._pretraining import PretrainConfig, new_foundation_model, pretrain_foundation_model
from ._tokenizer_training import (
    TokenizerTrainConfig,
    evaluate_tokenizer,
    new_tokenizer,
    train_tokenizer,
)

TOKENIZER_CONFIG = NeuroRVQConfig(
    depth_encoder=4, depth_decoder=2, n_code=256, code_dim=32, layer_scale=False
)
FM_DEPTH = 4
TOKENIZER_FILE = "neurorvq_tokenizer_small.safetensors"
FM_FILE = "neurorvq_fm_small.safetensors"
HEAD_FILE = "checker_lr_head.safetensors"


@dataclass(frozen=True)
class Plan:
    """Step counts and recipes of one way of producing the defaults."""

    tokenizer: TokenizerTrainConfig
    pretrain: PretrainConfig
    finetune: FinetuneConfig
    held_out_windows: int


PLANS = {
    # Sized for ~35 min on a shared 2-core CPU: channel crops keep a step near 1 s, and
    # the head is trained on frozen features (a full 20-epoch fine-tune of 74 channels
    # would take ~30 min alone there; pass --full-finetune where a GPU is available).
    "full": Plan(
        TokenizerTrainConfig(steps=500, batch_size=8, max_channels=16),
        PretrainConfig(steps=300, batch_size=8, max_channels=16),
        HEAD_RECIPE,
        held_out_windows=64,
    ),
    "quick": Plan(
        TokenizerTrainConfig(steps=100, batch_size=8, max_channels=16, warmup_steps=10),
        PretrainConfig(steps=60, batch_size=8, max_channels=16, warmup_steps=10),
        HEAD_RECIPE,
        held_out_windows=32,
    ),
}


def _provenance(stage: str, plan_name: str, settings: dict, seconds: float) -> dict:
    return {
        "trained_by": "training.train_defaults",
        "plan": plan_name,
        "stage": stage,
        "data": "pylossless 0.2.0 sub-s01 (faceO task), live causal preprocessing, 200 Hz",
        "held_out": "sub-s02 (never used for training)",
        "settings": settings,
        "train_seconds": round(seconds, 1),
        "torch": torch.__version__,
    }


def main(argv: list[str] | None = None) -> None:
    """Train, save and describe the three default models (resume errors: one message)."""
    try:
        _main(argv)
    except ResumeError as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)


def _main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a few hundred steps (minutes)")
    parser.add_argument("--out", type=Path, default=Path(__file__).parents[1] / "models")
    parser.add_argument("--work-dir", type=Path, default=default_work_dir(),
                        help="resumable run state (default: per-user cache, or "
                             "$NEURORVQ_TRAIN_DIR)")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch CPU threads (1 is fastest on a heavily shared CPU)")
    parser.add_argument("--full-finetune", action="store_true",
                        help="fine-tune the whole FM with the published recipe (slow on CPU)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    plan_name = "quick" if args.quick else "full"
    plan = PLANS[plan_name]
    if args.full_finetune:
        plan = Plan(plan.tokenizer, plan.pretrain, FinetuneConfig(), plan.held_out_windows)
    work = args.work_dir / plan_name

    train = load_recording("s01")
    held = load_recording("s02")
    channels = train.channels
    windows = continuous_windows(train, n_patches=4, hop_s=2.0, start_s=5.0)
    held_windows = continuous_windows(held, n_patches=4, hop_s=8.0, start_s=5.0)
    held_windows = held_windows[: plan.held_out_windows]
    # The held-out recording maps to the same electrodes (same cap); keep the training ones.
    keep = [held.channels.index(c) for c in channels]
    held_windows = held_windows[:, keep]
    print(f"sub-s01: {len(windows)} training windows, {len(channels)} channels")

    t0 = time.time()
    tokenizer = new_tokenizer(TOKENIZER_CONFIG, seed=plan.tokenizer.seed)
    tok_hist = train_tokenizer(tokenizer, windows, channels, plan.tokenizer, args.device,
                               session=Session(work / "tokenizer"))
    tok_seconds = time.time() - t0
    args.out.mkdir(parents=True, exist_ok=True)
    tok_path = save_checkpoint(
        tokenizer.cpu(), args.out / TOKENIZER_FILE, channels=channels,
        provenance=_provenance("tokenizer", plan_name, plan.tokenizer.as_dict(), tok_seconds),
    )
    tok_train = evaluate_tokenizer(tokenizer, windows[: plan.held_out_windows], channels)
    tok_held = evaluate_tokenizer(tokenizer, held_windows, channels)
    first, last = tok_hist[0], tok_hist[-1]
    write_card(tok_path, "NeuroRVQ tokenizer (small), trained on sub-s01",
               "Encoder depth 4, decoder depth 2, 4 branches x 8 RVQ levels x 256 codes "
               "of 32 dims. Paper reference (v1, 76 M params): z-scored MSE 0.084 / 0.090.",
               {"Training": {"steps": len(tok_hist), "seconds": round(tok_seconds),
                             **{f"loss {k} first/last": f"{first[k]:.3f} / {last[k]:.3f}"
                                for k in first}},
                "sub-s01 (training windows)": tok_train,
                "sub-s02 (held out)": tok_held})
    print("tokenizer:", tok_held)

    t0 = time.time()
    fm = new_foundation_model(tokenizer, FM_DEPTH, seed=plan.pretrain.seed)
    fm_hist = pretrain_foundation_model(fm, tokenizer, windows, channels, plan.pretrain,
                                        args.device, session=Session(work / "fm"))
    fm_seconds = time.time() - t0
    fm_path = save_checkpoint(
        fm.cpu(), args.out / FM_FILE, channels=channels,
        provenance=_provenance("fm-pretraining", plan_name, plan.pretrain.as_dict(), fm_seconds),
    )
    write_card(fm_path, "NeuroRVQ foundation model (small), masked-token pretrained on sub-s01",
               f"Depth {FM_DEPTH}, layer scale, 32 heads predicting the small tokenizer's "
               "codes (pretraining form: fine-tune it with a head before classifying).",
               {"Training": {"steps": len(fm_hist), "seconds": round(fm_seconds),
                             "masked-code loss first/last":
                                 f"{fm_hist[0]['loss']:.3f} / {fm_hist[-1]['loss']:.3f}",
                             "masked-code accuracy last 20 steps":
                                 float(np.mean([h["accuracy"] for h in fm_hist[-20:]]))}})

    t0 = time.time()
    x_train, y_train, _ = marker_epochs(train, CHECKER_CLASSES)
    x_held, y_held, _ = marker_epochs(held, CHECKER_CLASSES)
    x_held = x_held[:, keep]
    head = build_foundation_model(fm_path, n_out=1, pretraining_heads=False)
    ft_hist = finetune(head, x_train, y_train, channels, 2, plan.finetune, args.device)
    ft_seconds = time.time() - t0
    train_acc = balanced_accuracy_score(
        y_train, predict_proba(head, x_train, channels).argmax(1))
    held_acc = balanced_accuracy_score(y_held, predict_proba(head, x_held, channels).argmax(1))
    head_path = save_checkpoint(
        head.cpu(), args.out / HEAD_FILE, channels=channels, classes=CHECKER_CLASSES,
        provenance=_provenance("fine-tuning", plan_name, plan.finetune.as_dict(), ft_seconds)
        | {"window": {"mode": "markers", "marker_offset": 0.0, "marker_length": 1}},
    )
    write_card(head_path, "Checkerboard left vs right head (FM small + head, sub-s01)",
               "Binary head (one logit, sigmoid: p = P(checker-right)) on the small FM; "
               "input: 1 s marker-locked epochs from the checkerboard onset.",
               {"Training": {"epochs (sub-s01)": len(y_train),
                             "fine-tuning epochs": len(ft_hist),
                             "head only": plan.finetune.head_only,
                             "loss first/last": f"{ft_hist[0]:.3f} / {ft_hist[-1]:.3f}",
                             "seconds": round(ft_seconds)},
                "Balanced accuracy": {"sub-s01 (training)": float(train_acc),
                                      "sub-s02 (held out)": float(held_acc),
                                      "held-out epochs": len(y_held)}})
    print(f"checker head: train {train_acc:.3f}, held-out sub-s02 {held_acc:.3f}")


if __name__ == "__main__":
    main()


