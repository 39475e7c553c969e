"""Live calibration: record labelled marker-locked epochs from LSL, fine-tune a head, save it.

The epochs come out of the live pipeline itself (``streamer.Pipeline`` in marker mode, no
model attached, no outlets), so calibration data are preprocessed, channel-mapped and cut
exactly as the windows the new head will classify: the same ``RunConfig`` (stream,
preprocessing, windows) describes both. A running pipeline that watches its classifier
file (``models.watch_classifier``) swaps the new head in without restarting. The command
line is ``neurorvq-stream calibrate``.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from sklearn.metrics import balanced_accuracy_score
from tqdm.auto import tqdm

from neurorvq_stream.engines import (
    PATCH_SAMPLES,
    build_foundation_model,
    save_checkpoint,
    shipped_model,
)
from neurorvq_stream.streamer import Pipeline, ResultHub, RunConfig

from ._cards import write_card
from ._finetune import HEAD_RECIPE, FinetuneConfig, finetune, predict_proba


def epoch_config(config: RunConfig) -> RunConfig:
    """``config`` as a recorder of marker-locked epochs: no models, no outlets.

    Stream, preprocessing, mapping and window settings are kept: they are the spec the
    calibrated head will be applied with.
    """
    if not config.markers.enabled:
        raise ValueError("Calibration needs a marker stream: give --markers NAME "
                         "(markers.name in the config).")
    return config.override(**{
        "windows.mode": "markers", "models.tokenizer": "none", "models.classifier": "none",
        "models.watch_classifier": False, "outlets.predictions": False,
        "outlets.tokens": False, "outlets.reconstruction": False, "outlets.metrics": False,
    })


def record_epochs(
    config: RunConfig, classes: Sequence[str], n_per_class: int,
    timeout: float | None = None, progress: bool = True,
) -> tuple[np.ndarray, np.ndarray, tuple[str, ...]]:
    """Collect ``n_per_class`` marker-locked windows per class from the live streams.

    Returns ``X`` (n, C, n_patches*200) uV, ``y`` (indices into ``classes``) and the mapped
    NeuroRVQ channel names. Markers with other labels are ignored. ``timeout`` (s) bounds
    the wait; reaching it without enough epochs is an error that says what was collected.
    """
    if len(set(classes)) < 2:
        raise ValueError(f"Calibration needs at least two distinct classes, got {list(classes)}.")
    if n_per_class < 2:
        raise ValueError(f"n_per_class must be >= 2 (got {n_per_class}).")
    config = epoch_config(config)
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
                    f"{n_per_class} per class asked for; check that "
                    f"'{config.markers.name}' sends "
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
    config: RunConfig, classes: list[str], n_per_class: int, output: Path,
    foundation_model: Path | None = None, timeout: float | None = None,
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
    foundation_model = foundation_model or shipped_model("foundation")
    if foundation_model is None:
        raise FileNotFoundError("No foundation model given and none shipped: pass "
                                "--foundation-model PATH.")
    x, y, channels = record_epochs(config, classes, n_per_class, timeout, progress)
    offset = config.windows.marker_offset
    n_patches = x.shape[2] // PATCH_SAMPLES
    eeg_stream, marker_stream = config.stream.name, config.markers.name
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
