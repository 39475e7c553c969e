"""What several test files share that is not a fixture: timing rules for real LSL
streams, the parity cases (test parameters are chosen when tests are collected), and
results computed once per test run for every pytest-xdist worker (``computed_once``).

Imported by name (``from helpers import ...``): the test root is on ``sys.path``.
"""

import json
import os
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from filelock import FileLock

#: The authors' outputs and small random-weight checkpoints in the official key format.
PARITY_DIR = Path(__file__).resolve().parent / "fixtures" / "parity_v1"
#: One dict per case (channels, patches, batch); the arrays are in PARITY_REF.
PARITY_CASES = json.loads((PARITY_DIR / "cases.json").read_text())
PARITY_REF = np.load(PARITY_DIR / "cases.npz")

# How far two LSL clocks on this machine may disagree after liblsl's clock-offset estimate
# (``proc_clocksync`` / ``time_correction``): tens of µs on loopback (39 µs seen), and the
# estimate is refreshed while streaming. Timestamps that went through a correction are
# compared at this precision; uncorrected ones (no ``proc_clocksync``) exactly.
CLOCK_SYNC_S = 1e-3
# Deadline for anything that only has to happen eventually (an outlet being found, data
# arriving): generous, because a loaded machine is slow, and a passing test never waits it.
EVENTUALLY_S = 30.0


def wait_until(condition: Callable[[], bool], what: str, timeout: float = EVENTUALLY_S) -> None:
    """Poll ``condition`` until it holds; fail naming ``what`` if it never does."""
    end = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > end:
            raise AssertionError(f"gave up after {timeout:g} s waiting for {what}")
        time.sleep(0.01)

# Few occipito-parietal channels that carry the checkerboard's lateralized response: small
# decoder fixtures (``checker_epochs``) and recordings made from sub-s01 use them.
SMALL_CHANNELS = ("oz", "o1", "o2", "po7", "po8", "po3", "po4", "pz", "cz", "fz")


def computed_once(name: str, compute: Callable[[Path], None]) -> Path:
    """The file ``name`` in the run's scratch folder, made by ``compute(path)`` exactly once.

    pytest-xdist workers are separate processes that each build their session fixtures; a
    lock in the shared scratch folder (``conftest.pytest_configure``) lets the first worker
    compute and the others read what it wrote.
    """
    scratch = Path(os.environ["NEURORVQ_TEST_SCRATCH"]) / "shared"
    scratch.mkdir(exist_ok=True)
    path = scratch / name
    with FileLock(str(path) + ".lock"):
        if not path.exists():
            partial = path.with_name(path.name + ".partial")
            compute(partial)
            partial.rename(path)
    return path


def preprocessed(subject: str):
    """A bundled recording through the live preprocessing and mapping, computed once a run."""
    from neurorvq_stream.training import PreprocessedRecording, load_preprocessed

    def compute(path: Path) -> None:
        rec = load_preprocessed(subject)
        onsets, labels = zip(*rec.events, strict=True)
        with path.open("wb") as f:
            np.savez(f, data=rec.data, times=rec.times, channels=np.array(rec.channels),
                     source_channels=np.array(rec.source_channels),
                     onsets=np.array(onsets), labels=np.array(labels))

    with np.load(computed_once(f"preprocessed-{subject}.npz", compute)) as f:
        return PreprocessedRecording(
            subject=subject, data=f["data"], times=f["times"],
            channels=tuple(str(c) for c in f["channels"]),
            source_channels=tuple(str(c) for c in f["source_channels"]),
            events=tuple((float(t), str(label))
                         for t, label in zip(f["onsets"], f["labels"], strict=True)))
