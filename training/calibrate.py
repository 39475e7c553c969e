"""Live calibration: record labelled marker-locked epochs from LSL, fine-tune a head, save it.

The epochs come out of the live pipeline itself (``streamer.Pipeline`` in marker mode, no
model attached, no outlets), so calibration data are preprocessed, channel-mapped and cut
exactly as the windows the new head will classify. A running pipeline that watches its
classifier file (``models.watch_classifier``) swaps the new head in without restarting.

CLI (called by ``neurorvq-stream calibrate``)::

    python -m training.calibrate --stream EEG --markers MARKERS \\
        --classes checker-left checker-right --n-per-class 40 --output models/my_head.safetensors
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from sklearn.metrics import balanced_accuracy_score
from tqdm.auto import tqdm

from engines import build_foundation_model, save_checkpoint, shipped_model
from streamer._config import (
    MappingConfig,
    MarkerConfig,
    ModelConfig,
    OutletConfig,
    RunConfig,
    StreamConfig,
    WindowConfig,
)
from streamer._results import ResultHub
from streamer._runner import Pipeline

from ._cards import write_card
from ._finetune import HEAD_RECIPE, FinetuneConfig, finetune, predict_proba

DEFAULT_FOUNDATION = shipped_model("foundation")


def record_epochs(
    eeg_stream: str, marker_stream: str, classes: Sequence[str], n_per_class: int,
    offset: float = 0.0, n_patches: int = 1, montage: str | None = None,
    line_freq: float = 50.0, timeout: float | None = None, progress: bool = True,
) -> tuple[np.ndarray, np.ndarray, tuple[str, ...]]:
    """Collect ``n_per_class`` marker-locked windows per class from live streams.

    Returns ``X`` (n, C, n_patches*200) uV, ``y`` (indices into ``classes``) and the mapped
    NeuroRVQ channel names. Markers with other labels are ignored. ``timeout`` (s) bounds
    the wait; reaching it without enough epochs is an error that says what was collected.
    """
    if len(set(classes)) < 2:
        raise ValueError(f"Calibration needs at least two distinct classes, got {list(classes)}.")
    if n_per_class < 2:
        raise ValueError(f"n_per_class must be >= 2 (got {n_per_class}).")
    config = RunConfig(
        stream=StreamConfig(name=eeg_stream),
        markers=MarkerConfig(name=marker_stream),
        windows=WindowConfig(n_patches=n_patches, hop=1.0, mode="markers",
                             marker_offset=offset, marker_length=n_patches),
        mapping=MappingConfig(montage=montage),
        models=ModelConfig(tokenizer="none", classifier="none", watch_classifier=False),
        outlets=OutletConfig(predictions=False, tokens=False, reconstruction=False,
                             metrics=False),
    )
    config.preprocessing.line_freq = line_freq
    labels = {name: i for i, name in enumerate(classes)}
    hub = ResultHub(history=10 * n_per_class * len(classes))
    xs: list[np.ndarray] = []
    ys: list[int] = []
    counts = dict.fromkeys(classes, 0)
    deadline = None if timeout is None else time.monotonic() + timeout
    bar = tqdm(total=n_per_class * len(classes), desc="calibration epochs",
               disable=not progress)
    last = -1
    with Pipeline(config, hub) as pipeline:
        while min(counts.values()) < n_per_class:
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError(
                    f"Calibration timed out after {timeout} s with {counts} epochs of the "
                    f"{n_per_class} per class asked for; check that '{marker_stream}' sends "
                    f"the labels {list(classes)}."
                )
            for result in hub.wait_for(last, timeout=0.5):
                last = result.index
                if result.label in labels and counts[result.label] < n_per_class:
                    counts[result.label] += 1
                    xs.append(result.signal)
                    ys.append(labels[result.label])
                    bar.update(1)
        channels = pipeline.channels
    bar.close()
    return np.stack(xs).astype(np.float32), np.asarray(ys, dtype=np.int64), tuple(channels)


def calibrate(
    eeg_stream: str, marker_stream: str, classes: list[str], n_per_class: int, output: Path,
    foundation_model: Path = DEFAULT_FOUNDATION, offset: float = 0.0, n_patches: int = 1,
    montage: str | None = None, line_freq: float = 50.0, timeout: float | None = None,
    recipe: FinetuneConfig | None = None, progress: bool = True,
) -> Path:
    """Record epochs from live streams, fine-tune a head on ``foundation_model``, save it.

    Two classes give a one-logit head (p = P(classes[1])), more a softmax head. Returns the
    path of the saved ``.safetensors`` (with its JSON sidecar and a model card ``.md``).
    """
    output = Path(output)
    if output.suffix not in (".safetensors", ".pt"):
        raise ValueError(f"Output {str(output)!r} must end in .safetensors (or .pt).")
    recipe = recipe or HEAD_RECIPE
    x, y, channels = record_epochs(eeg_stream, marker_stream, classes, n_per_class, offset,
                                   n_patches, montage, line_freq, timeout, progress)
    n_out = 1 if len(classes) == 2 else len(classes)
    head = build_foundation_model(foundation_model, n_out=n_out, pretraining_heads=False)
    t0 = time.time()
    losses = finetune(head, x, y, channels, len(classes), recipe, progress=progress)
    seconds = time.time() - t0
    train_acc = balanced_accuracy_score(y, predict_proba(head, x, channels).argmax(1))
    output.parent.mkdir(parents=True, exist_ok=True)
    path = save_checkpoint(
        head.cpu(), output, channels=channels, classes=classes,
        provenance={
            "trained_by": "training.calibrate",
            "foundation_model": str(foundation_model),
            "streams": {"eeg": eeg_stream, "markers": marker_stream},
            "window": {"mode": "markers", "marker_offset": offset, "marker_length": n_patches},
            "recipe": recipe.as_dict(),
            "recorded_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        },
    )
    write_card(path, f"Calibrated head: {' vs '.join(classes)}",
               f"Head fine-tuned live on {len(y)} epochs from LSL stream '{eeg_stream}' "
               f"(markers '{marker_stream}'), marker + {offset} s, {n_patches} patch(es).",
               {"Calibration": {"epochs per class": n_per_class, "channels": len(channels),
                                "loss first/last": f"{losses[0]:.3f} / {losses[-1]:.3f}",
                                "training balanced accuracy": float(train_acc),
                                "seconds": round(seconds, 1)}})
    return path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of :func:`calibrate`, shared by ``neurorvq-stream calibrate`` and ``-m``."""
    parser.add_argument("--stream", required=True, help="name of the EEG LSL stream")
    parser.add_argument("--markers", required=True, help="name of the marker LSL stream")
    parser.add_argument("--classes", nargs="+", required=True, help="marker labels to learn")
    parser.add_argument("--n-per-class", type=int, default=40)
    parser.add_argument("--output", type=Path, required=True)
    parser.add_argument("--foundation-model", type=Path, default=DEFAULT_FOUNDATION)
    parser.add_argument("--offset", type=float, default=0.0, help="window start - marker (s)")
    parser.add_argument("--patches", type=int, default=1, help="window length (1 s patches)")
    parser.add_argument("--montage", default=None, help="e.g. biosemi128 for coded labels")
    parser.add_argument("--line-freq", type=float, default=50.0)
    parser.add_argument("--timeout", type=float, default=None)


def run_from_args(args: argparse.Namespace) -> int:
    """Calibrate with parsed :func:`add_arguments` options; returns the exit code."""
    path = calibrate(args.stream, args.markers, args.classes, args.n_per_class, args.output,
                     args.foundation_model, args.offset, args.patches, args.montage,
                     args.line_freq, args.timeout)
    print(f"Saved calibrated head to {path}. A pipeline running with --classifier {path} "
          "picks up later re-calibrations of that file without restarting.")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Command line for :func:`calibrate`."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_arguments(parser)
    return run_from_args(parser.parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main())
