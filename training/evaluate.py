"""Every decoder on the three labelled tasks of the two bundled recordings, one table each.

Tasks and why their windows are what they are (chosen from the paradigm and sub-s01's
event timing, never tuned on sub-s02):

- checkerboard left/right (visual evoked): 1 s from the stimulus. The lateralized
  visual response lies within 0-500 ms, and the next stimulus comes 0.76 s or more later.
- face/house (evoked; upright and inverted pooled per class): 1 s from the stimulus, for
  the same reasons (P1/N170 within 100-300 ms).
- left/right button press (motor): 2 s from 1 s before the press to 1 s after: the
  readiness potential builds up over the last second before a movement, mu/beta power
  drops over it and rebounds after. No high-pass (``l_freq`` 0) to keep slow potentials.
  Caveat of these recordings: each press answers a checkerboard on the same side about
  0.4 s earlier (386 of 395 presses in sub-s01), so press windows also hold that
  lateralized visual response; and the files were high-pass filtered at 1 Hz before
  distribution, which removes most of a readiness potential. The motor task here is
  therefore not a clean test of motor decoding.

Each decoder is trained as ``calibrate`` trains it (``_scoring``). Run:
``python -m neurorvq_stream.training.evaluate`` (prints markdown tables).
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
from threadpoolctl import threadpool_limits

from neurorvq_stream.engines import shipped_model
from neurorvq_stream.streamer import RunConfig, bundled_recording, load_recording

from ._data import PreprocessedRecording, marker_epochs, preprocess_recording
from ._decoder_set import LabelledEpochs
from ._neurorvq_eval import shipped_head_score
from ._scoring import COLUMNS, SUBJECTS, format_table, score_task
from .calibrate import DEFAULT_KINDS, window_spec


@dataclass(frozen=True)
class Task:
    """A labelled task of the bundled recordings and the window it is decoded from."""

    name: str
    classes: dict[str, tuple[str, ...]]
    marker_offset: float
    n_patches: int
    preprocessing: dict[str, object] = field(default_factory=dict)

    def config(self) -> RunConfig:
        return RunConfig.from_dict({
            # The markers come from the file; the name only satisfies the config's check.
            "markers": {"name": "events.tsv"},
            "mapping": {"montage": "biosemi128"}, "preprocessing": self.preprocessing,
            "windows": {"mode": "markers", "marker_offset": self.marker_offset,
                        "n_patches": self.n_patches},
        })


TASKS = (
    Task("checker", {"checker-left": ("checker-left",), "checker-right": ("checker-right",)},
         0.0, 1),
    Task("face-house", {"face": ("face-upright", "face-inverted"),
                        "house": ("house-upright", "house-inverted")}, 0.0, 1),
    Task("press", {"press-left": ("press-left",), "press-right": ("press-right",)},
         -1.0, 2, {"l_freq": 0.0}),
)


def task_epochs(task: Task, subject: str,
                cache: dict[tuple, PreprocessedRecording]) -> LabelledEpochs:
    """The task's epochs of one bundled subject, cut as ``calibrate`` would cut them."""
    config = task.config()
    key = (subject, tuple(sorted(task.preprocessing.items())))
    if key not in cache:
        cache[key] = preprocess_recording(
            load_recording(bundled_recording(subject), montage="biosemi128"), config, subject)
    rec = cache[key]
    x, y, _ = marker_epochs(rec, task.classes, task.marker_offset, task.n_patches)
    return LabelledEpochs(x, y, tuple(task.classes),
                          window_spec(config, rec.channels, task.classes), task.classes)


def main(argv: list[str] | None = None) -> None:
    """Print one results table per task."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", nargs="+", choices=[t.name for t in TASKS],
                        default=[t.name for t in TASKS])
    parser.add_argument("--decoders", nargs="+", default=list(DEFAULT_KINDS),
                        help="decoder kinds (default: all but neurorvq-head-full)")
    parser.add_argument("--full-finetune", action="store_true",
                        help="add the full NeuroRVQ fine-tune (hours on a CPU)")
    parser.add_argument("--foundation-model", type=Path, default=shipped_model("foundation"),
                        help="FM of the neurorvq kinds (default: the shipped one)")
    parser.add_argument("--classifier", type=Path, default=shipped_model("classifier"),
                        help="head scored s01 -> s02 on its task (default: the shipped one)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1,
                        help="CPU threads (BLAS and torch); 1 is fastest for these sizes")
    args = parser.parse_args(argv)
    kinds = [*args.decoders, *(["neurorvq-head-full"] if args.full_finetune else [])]
    torch.set_num_threads(args.threads)
    cache: dict[tuple, PreprocessedRecording] = {}
    with threadpool_limits(limits=args.threads):
        for task in (t for t in TASKS if t.name in args.tasks):
            t0 = time.perf_counter()
            epochs = {s: task_epochs(task, s, cache) for s in SUBJECTS}
            if epochs["s01"].spec.channels != epochs["s02"].spec.channels:
                raise ValueError("sub-s01 and sub-s02 map to different channels.")
            print(f"\n## {task.name}: {epochs['s01'].spec.describe()}")
            for s, e in epochs.items():
                print(f"sub-{s}: {len(e.y)} epochs {e.n_per_class}")
            rows = score_task(kinds, epochs, args.foundation_model, args.seed, progress=False)
            shipped = shipped_head_score(args.classifier, epochs["s02"])
            if shipped is not None:
                rows["shipped NeuroRVQ head (trained on s01)"] = {COLUMNS[0]: f"{shipped:.3f}"}
            print(format_table(rows))
            print(f"({time.perf_counter() - t0:.0f} s)", flush=True)


if __name__ == "__main__":
    main()
