"""What tempering a decoder's confidence to the session costs per live window.

The shipped default decoder on held-out sub-s02's checkerboard epochs, one window at a
time as the inference thread gives them, on one BLAS thread: the decoder alone (its
calibration-time temperature), and through its session (``decoder.session()``: the 8
copies of its committee vote on each window, and the temperature is solved over the
windows so far). Prints p50/p99 per window and the ratio, with the CPU it ran on.

Run: ``.venv/bin/python benchmarks/bench_session_confidence.py [--windows 300]``
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

from neurorvq_stream.decoders import default_decoder, load_decoder
from neurorvq_stream.engines.backends._cache import cpu_name
from neurorvq_stream.training import load_preprocessed, marker_epochs
from neurorvq_stream.training._data import CHECKER_CLASSES


def _cpu() -> str:
    """The processor model (``cpu_name``, as the engine cache keys it) and the vector
    extensions that change CPU figures."""
    info = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    flags = next((set(line.split(":", 1)[1].split()) for line in info.splitlines()
                  if line.startswith("flags")), set())
    shown = [f for f in ("avx2", "avx512f", "avx512_bf16", "amx_tile") if f in flags]
    return f"{cpu_name()} ({', '.join(shown)})"


def _per_window_ms(classify, x: np.ndarray) -> np.ndarray:
    classify(x[0])  # first call pays for lazy set-up
    spent = []
    for window in x[1:]:
        t0 = time.perf_counter()
        classify(window)
        spent.append(time.perf_counter() - t0)
    return np.array(spent) * 1e3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--windows", type=int, default=300)
    args = parser.parse_args()
    recording = load_preprocessed("s02")
    decoder = load_decoder(default_decoder())
    x, _, _ = marker_epochs(recording, CHECKER_CLASSES, offset=0.0, n_patches=1)
    x = x[: args.windows + 1, [recording.channels.index(c) for c in decoder.spec.channels]]
    print(f"CPU: {_cpu()}; one BLAS thread; {len(x) - 1} windows of "
          f"{x.shape[1]} channels x {x.shape[2]} samples")
    header = f"{'path':<34}{'p50 ms':>9}{'p99 ms':>9}{'x alone':>9}"
    print(header + "\n" + "-" * len(header))
    with threadpool_limits(limits=1):
        alone = _per_window_ms(decoder.predict_proba, x)
        session = _per_window_ms(decoder.session().predict_proba, x)
    for name, ms in (("decoder alone (bound temperature)", alone),
                     ("session (committee of 8)", session)):
        print(f"{name:<34}{np.median(ms):>9.2f}{np.percentile(ms, 99):>9.2f}"
              f"{np.median(ms) / np.median(alone):>9.2f}")


if __name__ == "__main__":
    main()
