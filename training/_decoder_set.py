"""Train a set of decoders on the same labelled epochs: CV scores, calibration, final fit.

For every kind: stratified k-fold cross-validation gives the balanced accuracy per fold
and each epoch's out-of-fold decision score; the calibration (``decoders.fit_calibrator``:
a temperature, never more confident than the lower bound of the out-of-fold accuracy) is
fitted on those scores, and the decoder itself on all epochs. One pass of folds thus
yields the score the user sees, the calibration and its out-of-fold check (ECE, mean
confidence against accuracy), which is why a decoder near chance comes out with
probabilities near 1/K.

NeuroRVQ heads are fine-tuned networks (``_finetune``): head-only tuning shares the frozen
backbone's features across folds; the calibration is folded into the head's last linear
layer, so the saved checkpoint gives calibrated probabilities on every backend.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from scipy import stats
from sklearn.metrics import balanced_accuracy_score
from sklearn.model_selection import StratifiedKFold
from threadpoolctl import threadpool_limits
from tqdm.auto import tqdm

from neurorvq_stream.decoders import KINDS, WindowSpec, calibration_report
from neurorvq_stream.decoders._calibrated import (
    CalibratedModel,
    calibration_summary,
    decision_scores,
    fit_calibrator,
)
from neurorvq_stream.decoders._decoders import SklearnDecoder
from neurorvq_stream.decoders._features import FoundationFeatures
from neurorvq_stream.decoders._kinds import HEAD_KINDS
from neurorvq_stream.decoders._persistence import annotate_head, save_sklearn_decoder
from neurorvq_stream.decoders._session_confidence import fit_committee
from neurorvq_stream.decoders._typicality import TypicalityGate
from neurorvq_stream.engines._api import prepare_window
from neurorvq_stream.engines._checkpoint import build_foundation_model, save_checkpoint

from ._finetune import HEAD_RECIPE, FinetuneConfig, epoch_features, finetune, finetune_head

N_FOLDS = 5


@dataclass(frozen=True)
class LabelledEpochs:
    """Epochs (n, C, T) uV, labels (indices into ``class_names``) and the spec they follow.

    ``class_markers`` maps each class to its marker labels (a class may group several).
    """

    x: np.ndarray
    y: np.ndarray
    class_names: tuple[str, ...]
    spec: WindowSpec
    class_markers: dict[str, tuple[str, ...]]

    def __post_init__(self) -> None:
        if len(self.x) != len(self.y):
            raise ValueError(f"{len(self.x)} epochs but {len(self.y)} labels.")
        counts = np.bincount(self.y, minlength=len(self.class_names))
        few = [c for c, n in zip(self.class_names, counts, strict=True) if n < 2]
        if few:
            raise ValueError(f"Classes {few} have fewer than 2 epochs "
                             f"({dict(zip(self.class_names, counts.tolist(), strict=True))}); "
                             "cross-validation needs at least 2 of every class.")

    @property
    def n_per_class(self) -> dict[str, int]:
        counts = np.bincount(self.y, minlength=len(self.class_names)).tolist()
        return dict(zip(self.class_names, counts, strict=True))


@dataclass
class FittedDecoder:
    """One trained kind: its scores, its calibration and the model to save."""

    kind: str
    epochs: LabelledEpochs
    scores: dict[str, Any]
    calibration: dict[str, Any]
    model: CalibratedModel | None = None  # scikit-learn kinds
    head: torch.nn.Module | None = None  # NeuroRVQ heads
    gate: TypicalityGate | None = None  # NeuroRVQ heads (sklearn kinds hold theirs)
    provenance: dict[str, Any] = field(default_factory=dict)

    def probabilities(self, x: np.ndarray) -> np.ndarray:
        """Calibrated (n, K) probabilities of new epochs (evaluation)."""
        if self.model is not None:
            return self.model.predict_proba(x)
        from ._finetune import predict_proba

        p = predict_proba(self.head, x, self.epochs.spec.channels).astype(np.float64)
        return p if self.gate is None else self.gate.shrink(p, x)

    def save(self, path: Path) -> Path:
        """Write the decoder file and its sidecar (``.skops`` or ``.safetensors``)."""
        e = self.epochs
        if self.head is not None:
            save_checkpoint(self.head.cpu(), path, channels=e.spec.channels,
                            classes=e.class_names, provenance={
                                # The window as pre-spec readers of the sidecar expect it.
                                "window": {"mode": e.spec.mode,
                                           "marker_offset": e.spec.marker_offset,
                                           "marker_length": e.spec.n_patches}})
            return annotate_head(path, self.kind, e.spec, self.scores, self.calibration,
                                 e.class_markers, self.provenance, self.gate)
        decoder = SklearnDecoder(self.kind, e.class_names, e.spec, self.model, self.scores,
                                 e.class_markers, self.provenance)
        return save_sklearn_decoder(decoder, path, self.calibration)


def file_suffix(kind: str) -> str:
    """The file format a kind is saved in."""
    return ".safetensors" if kind in HEAD_KINDS else ".skops"


def _folds(y: np.ndarray, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    n_splits = min(N_FOLDS, int(np.bincount(y).min()))
    return list(StratifiedKFold(n_splits=n_splits, shuffle=True, random_state=seed).split(y, y))


def _predicted(scores: np.ndarray) -> np.ndarray:
    """Class indices from decision scores (n, 1) binary or (n, K)."""
    return (scores[:, 0] > 0).astype(int) if scores.shape[1] == 1 else scores.argmax(axis=1)


def _scores(y: np.ndarray, oof: np.ndarray, folds: Sequence[tuple[np.ndarray, np.ndarray]],
            n_classes: int, seconds: float, n_per_class: dict[str, int],
            calibrator: Any) -> dict[str, Any]:
    per_fold = [float(balanced_accuracy_score(y[test], _predicted(oof[test])))
                for _, test in folds]
    chance = 1.0 / n_classes
    # The calibration on the epochs it was fitted on: a check of the fit, not of transfer.
    oof_calibration = calibration_report(calibrator.predict_proba(oof), y)
    return {
        "metric": "balanced accuracy", "cv_mean": float(np.mean(per_fold)),
        "cv_std": float(np.std(per_fold)), "cv_folds": per_fold,
        "chance": chance,
        # Above this a score is unlikely (p < 0.05) to be chance (binomial, all epochs).
        "chance_95": float(stats.binom.ppf(0.95, len(y), chance) / len(y)),
        "n_per_class": n_per_class, "train_seconds": round(seconds, 1),
        "oof_ece": oof_calibration.ece, "oof_mean_confidence": oof_calibration.mean_confidence,
        "oof_accuracy": oof_calibration.accuracy,
    }


def _out_of_fold(fit_scores: Callable[[np.ndarray, np.ndarray], np.ndarray], n: int,
                 folds: Sequence[tuple[np.ndarray, np.ndarray]], bar: Any) -> np.ndarray:
    """Decision scores of every epoch from the fold that held it out."""
    oof: np.ndarray | None = None
    for train, test in folds:
        part = fit_scores(train, test)
        oof = np.zeros((n, part.shape[1])) if oof is None else oof
        oof[test] = part
        bar.update(1)
    assert oof is not None
    return oof


def _fit_sklearn(kind: str, e: LabelledEpochs, features: FoundationFeatures | None,
                 gate: TypicalityGate, folds: list, bar: Any
                 ) -> tuple[CalibratedModel, np.ndarray]:
    build = KINDS[kind].build
    assert build is not None
    x = e.x.astype(np.float64)

    def fit_scores(train: np.ndarray, test: np.ndarray) -> np.ndarray:
        return decision_scores(build(features).fit(x[train], e.y[train]), x[test])

    # Channel-sized matrices: one BLAS thread is fastest, several only contend (7x slower
    # measured on a loaded 2-core machine).
    with threadpool_limits(limits=1, user_api="blas"):
        oof = _out_of_fold(fit_scores, len(e.y), folds, bar)
        final = build(features).fit(x, e.y)
    bar.update(1)
    return CalibratedModel(final, fit_calibrator(oof, e.y), gate), oof


def _fold_calibration_into_head(head: torch.nn.Module, calibrator: Any) -> None:
    """Make the head's logits the calibrated ones (logits / T): exact, it is linear. The
    bound on the accuracy only chooses T, so heads get it the same way."""
    with torch.no_grad():
        head.head.weight.div_(calibrator.temperature_)
        head.head.bias.div_(calibrator.temperature_)


def _fit_head(kind: str, e: LabelledEpochs, fm_path: Path, base_features: torch.Tensor | None,
              recipe: FinetuneConfig, folds: list, bar: Any,
              progress: bool) -> tuple[torch.nn.Module, Any, np.ndarray]:
    n_classes = len(e.class_names)
    n_out = 1 if n_classes == 2 else n_classes
    torch.manual_seed(recipe.seed)  # the new head's initial weights: same data, same head
    base = build_foundation_model(fm_path, n_out=n_out, pretraining_heads=False)
    channels = e.spec.channels
    head_only = kind == "neurorvq-head"
    if head_only and base_features is None:
        base_features = epoch_features(base, e.x, channels)

    def train(rows: np.ndarray) -> torch.nn.Module:
        model = copy.deepcopy(base)
        if head_only:
            finetune_head(model, base_features[rows], e.y[rows], n_classes, recipe,
                          progress=False)
        else:
            finetune(model, e.x[rows], e.y[rows], channels, n_classes, recipe, progress=progress)
        return model

    @torch.no_grad()
    def logits(model: torch.nn.Module, rows: np.ndarray) -> np.ndarray:
        model.eval()
        if head_only:
            return model.head(model.fc_norm(base_features[rows])).numpy()
        w = prepare_window(e.x[rows], channels, model.config)
        return model(w.patches, w.spatial_ix, w.time_ix).numpy()

    oof = _out_of_fold(lambda tr, te: logits(train(tr), te), len(e.y), folds, bar)
    final = train(np.arange(len(e.y)))
    bar.update(1)
    calibrator = fit_calibrator(oof, e.y)
    _fold_calibration_into_head(final, calibrator)
    return final.eval(), calibrator, oof


def head_recipe(kind: str, seed: int = 0) -> FinetuneConfig:
    """The published recipe: with the backbone frozen for ``neurorvq-head``, whole otherwise."""
    head_only = HEAD_RECIPE.as_dict() if kind == "neurorvq-head" else {}
    return FinetuneConfig(**{**head_only, "seed": seed})


def fit_decoders(
    kinds: Sequence[str], epochs: LabelledEpochs, foundation_model: Path | None = None,
    seed: int = 0, progress: bool = True, recipes: dict[str, FinetuneConfig] | None = None,
) -> list[FittedDecoder]:
    """Cross-validate, calibrate and fit every kind in ``kinds`` on ``epochs``.

    Kinds that read the NeuroRVQ foundation model need ``foundation_model``; they share
    its features, computed once. ``recipes`` replaces the fine-tuning recipe of a head
    kind (default :func:`head_recipe`).
    """
    unknown = [k for k in kinds if k not in KINDS]
    if unknown:
        raise ValueError(f"Unknown decoder kinds {unknown}; known: {', '.join(KINDS)}.")
    needs_fm = [k for k in kinds if KINDS[k].uses_foundation_model]
    if needs_fm and foundation_model is None:
        raise ValueError(f"Decoders {needs_fm} need a NeuroRVQ foundation model "
                         "(--foundation-model PATH); none given and none shipped.")
    folds = _folds(epochs.y, seed)
    features = (FoundationFeatures.from_checkpoint(str(foundation_model), epochs.spec.channels)
                if needs_fm else None)
    with threadpool_limits(limits=1, user_api="blas"):
        gate = TypicalityGate().fit(epochs.x)  # one per epoch set: it only reads the epochs
    bar = tqdm(total=len(kinds) * (len(folds) + 1), desc="decoders", disable=not progress)
    fitted = []
    for kind in kinds:
        bar.set_postfix_str(kind)
        t0 = time.perf_counter()
        head = model = None
        if kind in HEAD_KINDS:
            recipe = (recipes or {}).get(kind) or head_recipe(kind, seed)
            base = (torch.as_tensor(features.transform(epochs.x), dtype=torch.float32)
                    if kind == "neurorvq-head" and features is not None else None)
            head, calibrator, oof = _fit_head(kind, epochs, foundation_model, base, recipe,
                                              folds, bar, progress)
            calibration = {**calibration_summary(calibrator), "folded_into_head": True}
            provenance = {"foundation_model": str(foundation_model), "recipe": recipe.as_dict()}
        else:
            model, oof = _fit_sklearn(kind, epochs, features, gate, folds, bar)
            calibrator = model.calibrator
            calibration = calibration_summary(calibrator)
            provenance = ({"foundation_model": str(foundation_model)}
                          if KINDS[kind].uses_foundation_model else {})
        seconds = time.perf_counter() - t0
        scores = _scores(epochs.y, oof, folds, len(epochs.class_names), seconds,
                         epochs.n_per_class, calibrator)
        fitted.append(FittedDecoder(kind, epochs, scores, calibration, model, head,
                                    None if head is None else gate,
                                    {"summary": KINDS[kind].summary, **provenance}))
    bar.close()
    return fitted


def add_committee(fitted: FittedDecoder, seed: int = 0) -> None:
    """Give a scikit-learn decoder the committee a live session estimates its accuracy from
    (``decoders._session_confidence``); only the decoder that is kept needs one."""
    if fitted.model is not None:
        e = fitted.epochs
        with threadpool_limits(limits=1, user_api="blas"):
            fitted.model = fit_committee(fitted.model, e.x.astype(np.float64), e.y, seed=seed)


def choose(fitted: Sequence[FittedDecoder], requested: str | None = None
           ) -> tuple[FittedDecoder, str]:
    """The decoder to save and why: the one named, else the best cross-validated score."""
    ranked = sorted(fitted, key=lambda f: -f.scores["cv_mean"])
    best = ranked[0]
    if requested is not None:
        named = [f for f in fitted if f.kind == requested]
        if not named:
            raise ValueError(f"--decoder {requested!r} was not among the trained kinds "
                             f"({', '.join(f.kind for f in fitted)}).")
        chosen = named[0]
        why = (f"named with --decoder; best by cross-validation was {best.kind} "
               f"({best.scores['cv_mean']:.3f})" if chosen is not best else
               "named with --decoder; it is also the best by cross-validation")
        return chosen, why
    s = best.scores
    why = f"highest cross-validated balanced accuracy ({s['cv_mean']:.3f} ± {s['cv_std']:.3f}"
    if len(ranked) > 1:
        runner = ranked[1]
        why += f"; next {runner.kind} {runner.scores['cv_mean']:.3f}"
    why += ")"
    if s["cv_mean"] <= s["chance_95"]:
        why += (f". WARNING: that is not above chance (95% chance bound {s['chance_95']:.3f} "
                f"for {sum(s['n_per_class'].values())} epochs): check the markers, the "
                "classes and the window before relying on it")
    return best, why
