"""Cost and latency of the causal preprocessing, per source rate and channel count.

Streams 20 s of noise in 20 ms chunks (what a 50 Hz LSL pull gives) through
``Preprocessor`` and prints, for each resampler: CPU time as a share of one core, the
worst time for one chunk, and how far the 200 Hz output lags the input (the resampler's
look-ahead or backlog), median and max over the run.

Run: ``.venv/bin/python benchmarks/bench_preprocessing.py [--seconds 20]``
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from neurorvq_stream.streamer._preprocessing import Preprocessor


def _measure(rate: float, n_channels: int, resampler: str, seconds: float) -> dict[str, float]:
    rng = np.random.default_rng(0)
    chunk = max(1, round(rate * 0.02))
    data = rng.standard_normal((round(rate * seconds), n_channels)) * 20.0
    times = np.arange(data.shape[0]) / rate
    pre = Preprocessor(rate, n_channels, resampler=resampler)  # type: ignore[arg-type]
    worst, total, lags = 0.0, 0.0, []
    for start in range(0, data.shape[0], chunk):
        t0 = time.perf_counter()
        pre.process(data[start : start + chunk], times[start : start + chunk])
        spent = time.perf_counter() - t0
        total += spent
        worst = max(worst, spent)
        lags.append(pre.resampler_latency_s)
    return {
        "cpu_share": total / seconds,
        "worst_chunk_ms": worst * 1e3,
        "lag_median_ms": float(np.median(lags[len(lags) // 4 :])) * 1e3,
        "lag_max_ms": float(np.max(lags[len(lags) // 4 :])) * 1e3,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0, help="stream length per case")
    args = parser.parse_args()
    header = (
        f"{'resampler':<10}{'rate Hz':>9}{'chans':>7}{'CPU % core':>12}"
        f"{'worst chunk ms':>16}{'lag p50 ms':>12}{'lag max ms':>12}"
    )
    print(header)
    print("-" * len(header))
    for resampler in ("polyphase", "soxr"):
        for rate in (256.0, 512.0, 1000.0, 2048.0):
            for n_channels in (20, 64, 128):
                r = _measure(rate, n_channels, resampler, args.seconds)
                print(
                    f"{resampler:<10}{rate:>9.0f}{n_channels:>7}{100 * r['cpu_share']:>12.2f}"
                    f"{r['worst_chunk_ms']:>16.2f}{r['lag_median_ms']:>12.0f}"
                    f"{r['lag_max_ms']:>12.0f}"
                )


if __name__ == "__main__":
    main()
