"""Calibration and session adaptation across subjects: the two tables of the README.

For each of the six cross-subject directions of the bundled tasks (``evaluate.TASKS``):
the decoder ``calibrate`` would save from the training subject (best by cross-validation
among ``--decoders``), trained exactly as ``calibrate`` trains it, then applied to the
other subject's epochs in the order they were recorded.

- ``--calibration``: balanced accuracy, ECE (10 bins), mean confidence against accuracy
  and NLL on all of the other subject's epochs, for four temperatures: the one that best
  fits the out-of-fold scores alone (files written by 0.2.0), that one no more confident
  than the out-of-fold accuracy's lower bound ("bound"), and the session's own that a live
  run uses (``_session_confidence``: causal, the bound for its first windows), without
  labels ("session") and learning from each epoch's class once it is past ("+ labels", a
  cued run whose markers name the class).
- ``--adaptation``: the decoder without and with re-centring (``decoder.adapter()``),
  both tempered to the session and scored on the epochs after the first ``ADAPT_SHARE`` of
  the session; the adapter sees those first epochs unlabelled (its warm-up) and then keeps
  learning from every epoch it has classified.

Run: ``python -m neurorvq_stream.training.transfer --calibration --adaptation``.
"""

from __future__ import annotations

import argparse
import copy
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from threadpoolctl import threadpool_limits

from neurorvq_stream.decoders import SessionAdapter, calibration_report
from neurorvq_stream.decoders._calibrated import CalibratedModel
from neurorvq_stream.decoders._metrics import balanced_accuracy

from ._data import PreprocessedRecording
from ._decoder_set import FittedDecoder, LabelledEpochs, add_committee, choose, fit_decoders
from ._scoring import SUBJECTS
from .evaluate import TASKS, task_epochs

#: The kinds ``calibrate`` chose on these tasks (README results; fbcsp and the NeuroRVQ
#: kinds never won within a subject and take far longer).
TRANSFER_KINDS = ("xdawn-tangent", "amplitude-lr", "slow-potential-lda")
#: Share of the test session the adapter sees before its epochs are scored.
ADAPT_SHARE = 0.2


@dataclass(frozen=True)
class Direction:
    """A decoder chosen on one subject and the other subject's epochs, in recording order."""

    task: str
    train: str
    test: str
    decoder: FittedDecoder
    epochs: LabelledEpochs

    @property
    def name(self) -> str:
        return f"{self.task} {self.train} -> {self.test}"


def directions(tasks: Sequence[str], kinds: Sequence[str], seed: int = 0) -> Iterator[Direction]:
    """Both directions of each task, the chosen decoder trained as ``calibrate`` does."""
    cache: dict[tuple, PreprocessedRecording] = {}
    for task in (t for t in TASKS if t.name in tasks):
        epochs = {s: task_epochs(task, s, cache) for s in SUBJECTS}
        for train, test in (SUBJECTS, SUBJECTS[::-1]):
            chosen, _ = choose(fit_decoders(kinds, epochs[train], None, seed, progress=False))
            add_committee(chosen, seed)
            yield Direction(task.name, train, test, chosen, epochs[test])


def likelihood_only(model: CalibratedModel) -> CalibratedModel:
    """The model with the temperature the out-of-fold likelihood alone gives (0.2.0)."""
    calibrator = copy.copy(model.calibrator)
    calibrator.temperature_ = calibrator.likelihood_temperature_
    return CalibratedModel(model.estimator, calibrator, model.gate)


def calibration_row(d: Direction) -> str:
    """One markdown row: decoder, accuracy, ECE / confidence / NLL of the 0.2.0 temperature,
    the bounded one, and the session's without and with the past epochs' labels (causal,
    over the epochs in recording order)."""
    model = d.decoder.model
    x, y = d.epochs.x, d.epochs.y
    reports = [calibration_report(p, y) for p in (
        likelihood_only(model).predict_proba(x), model.predict_proba(x),
        SessionAdapter(model, recentre=False).probabilities(x),
        SessionAdapter(model, recentre=False).probabilities(x, y.tolist()))]

    def cells(values: list[float], digits: int) -> str:
        *rest, last = (f"{v:.{digits}f}" for v in values)
        return " -> ".join(rest) + f" -> **{last}**"

    session = reports[-1]
    return (f"| {d.name} | {d.decoder.kind} | {session.balanced_accuracy:.3f} | "
            f"{session.accuracy:.3f} | {cells([r.ece for r in reports], 3)} | "
            f"{cells([r.mean_confidence for r in reports], 3)} | "
            f"{cells([r.nll for r in reports], 2)} |")


CALIBRATION_HEADER = (
    "| direction | decoder (chosen by CV) | balanced accuracy | accuracy "
    "| ECE 0.2.0 -> bound -> session -> + labels "
    "| mean confidence 0.2.0 -> bound -> session -> + labels "
    "| NLL 0.2.0 -> bound -> session -> + labels |\n|---|---|---|---|---|---|---|")


def adaptation_scores(d: Direction) -> tuple[float, float, float, float]:
    """Balanced accuracy and ECE without and with re-centring, after the warm-up share
    (both tempered to the session)."""
    model = d.decoder.model
    x, y = d.epochs.x, d.epochs.y
    first = int(np.ceil(ADAPT_SHARE * len(y)))
    plain = SessionAdapter(model, warmup_windows=first, recentre=False).probabilities(x)[first:]
    adapted = SessionAdapter(model, warmup_windows=first).probabilities(x)[first:]
    return (balanced_accuracy(plain, y[first:]), balanced_accuracy(adapted, y[first:]),
            calibration_report(plain, y[first:]).ece,
            calibration_report(adapted, y[first:]).ece)


ADAPTATION_HEADER = (
    "| direction | decoder (chosen by CV) | method | balanced accuracy without -> with "
    "| change | ECE (session temperature) without -> with |\n|---|---|---|---|---|---|")


def main(argv: list[str] | None = None) -> None:
    """Print the calibration and/or adaptation tables (markdown)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calibration", action="store_true")
    parser.add_argument("--adaptation", action="store_true")
    parser.add_argument("--tasks", nargs="+", choices=[t.name for t in TASKS],
                        default=[t.name for t in TASKS])
    parser.add_argument("--decoders", nargs="+", default=list(TRANSFER_KINDS))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    if not (args.calibration or args.adaptation):
        parser.error("give --calibration, --adaptation or both")
    torch.set_num_threads(args.threads)
    t0 = time.perf_counter()
    calibration, adaptation, changes = [], [], []
    with threadpool_limits(limits=args.threads):
        for d in directions(args.tasks, args.decoders, args.seed):
            if args.calibration:
                calibration.append(calibration_row(d))
            if args.adaptation:
                without, with_, ece0, ece1 = adaptation_scores(d)
                changes.append((without, with_))
                method = SessionAdapter(d.decoder.model).method
                adaptation.append(f"| {d.name} | {d.decoder.kind} | {method} | {without:.3f} "
                                  f"-> {with_:.3f} | {with_ - without:+.3f} | {ece0:.3f} -> "
                                  f"{ece1:.3f} |")
            print(f"{d.name} done ({time.perf_counter() - t0:.0f} s)", flush=True)
    if calibration:
        print("\nCalibration on the other subject (all its epochs):\n")
        print("\n".join([CALIBRATION_HEADER, *calibration]))
    if adaptation:
        without, with_ = np.mean(changes, axis=0)
        worst = min(w - n for n, w in changes)
        print(f"\nSession adaptation (scored after the first {ADAPT_SHARE:.0%} of the "
              "other subject's epochs):\n")
        print("\n".join([ADAPTATION_HEADER, *adaptation,
                         f"| mean | | | {without:.3f} -> {with_:.3f} | {with_ - without:+.3f} "
                         f"| |"]))
        print(f"\nLargest loss in one direction: {-min(worst, 0.0):.3f}.")


if __name__ == "__main__":
    main()
