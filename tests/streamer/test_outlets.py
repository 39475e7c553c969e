"""Result outlets: metadata, layouts, and stamps in the source clock of the window."""

import uuid

import numpy as np
import pylsl
from conftest import EVENTUALLY_S, wait_until

from streamer._lsl import find_streams, read_channels
from streamer._outlets import COUNTERS, STAGES, ResultOutlets
from streamer._results import PipelineStatus, WindowResult

CHANNELS = ("fp1", "cz", "o2")
# Uncorrected stamps travel as doubles; liblsl may send a regular sample's stamp as
# "previous + 1/rate" and recompute it on arrival, which rounds at ~1e-11 s here.
EXACT_S = 1e-9
N_PATCHES, HOP = 2, 100


def _inlet(name: str, source_id: str) -> pylsl.StreamInlet:
    """An inlet without clock correction: stamps arrive exactly as the outlet sent them."""
    (info,) = find_streams(name=name, source_id=source_id, timeout=EVENTUALLY_S)
    inlet = pylsl.StreamInlet(info, processing_flags=0)
    inlet.open_stream(timeout=EVENTUALLY_S)
    return inlet


def _pull_all(inlet: pylsl.StreamInlet, n: int) -> tuple[np.ndarray, np.ndarray]:
    data, stamps = [], []

    def arrived() -> bool:
        d, t = inlet.pull_chunk(timeout=0.05, min_samples=1, as_numpy=True)
        data.append(d)
        stamps.append(t)
        return sum(map(len, stamps)) >= n

    wait_until(arrived, f"{n} samples")
    return np.concatenate(data), np.concatenate(stamps)


def test_each_outlet_carries_the_window_time_and_its_layout():
    sid = f"out-{uuid.uuid4().hex[:8]}"
    rng = np.random.default_rng(1)
    outlets = ResultOutlets(CHANNELS, N_PATCHES, HOP, ("left", "right"),
                            {"engine": "pytorch-cpu"}, source_id=sid)
    inlets = {name: _inlet(name, f"{sid}-{suffix}") for name, suffix in [
        ("NeuroRVQ-Predictions", "predictions"), ("NeuroRVQ-Tokens", "tokens"),
        ("NeuroRVQ-Reconstruction", "reconstruction"), ("NeuroRVQ-Metrics", "metrics")]}
    n_tok = len(CHANNELS) * N_PATCHES
    result = WindowResult(
        index=7, t_last=pylsl.local_clock() - 0.123, channels=CHANNELS,
        source_channels=("Fp1", "Cz", "O2"), signal=np.zeros((3, 400), np.float32),
        n_patches=N_PATCHES,
        tokens=rng.integers(0, 8192, (4, 8, 1, n_tok)),
        reconstruction=rng.standard_normal((1, 3, 400)).astype(np.float32),
        probabilities=np.array([0.3, 0.7], np.float32), class_names=("left", "right"),
        latency={"inference": 12.5, "end_to_end": 20.0},
    )
    outlets.push(result)
    outlets.push_metrics(result, PipelineStatus(windows_done=8, windows_dropped=2))

    probs, t = _pull_all(inlets["NeuroRVQ-Predictions"], 1)
    np.testing.assert_allclose(probs[0], [0.3, 0.7])
    np.testing.assert_allclose(t, [result.t_last], atol=EXACT_S, rtol=0)
    pinfo = inlets["NeuroRVQ-Predictions"].info(timeout=EVENTUALLY_S)
    assert [c.label for c in read_channels(pinfo)] == ["left", "right"]
    assert pinfo.desc().child("neurorvq").child_value("engine") == "pytorch-cpu"

    tokens, t = _pull_all(inlets["NeuroRVQ-Tokens"], 1)
    tokens = tokens[0].reshape(4, 8, len(CHANNELS), N_PATCHES)
    # layout index ((branch*8 + level)*C + channel)*A + patch; engine index k = channel*A + patch
    np.testing.assert_array_equal(tokens[2, 5, 1, 0], result.tokens[2, 5, 0, 1 * N_PATCHES + 0])
    np.testing.assert_array_equal(tokens.reshape(4, 8, -1), result.tokens[:, :, 0, :])
    np.testing.assert_allclose(t, [result.t_last], atol=EXACT_S, rtol=0)
    layout = inlets["NeuroRVQ-Tokens"].info(timeout=EVENTUALLY_S).desc().child("layout")
    assert layout.child_value("channels") == ",".join(CHANNELS)

    rec, t = _pull_all(inlets["NeuroRVQ-Reconstruction"], HOP)
    np.testing.assert_allclose(rec, result.reconstruction[0, :, -HOP:].T)
    np.testing.assert_allclose(t, result.t_last - np.arange(HOP)[::-1] / 200, atol=EXACT_S, rtol=0)
    rinfo = inlets["NeuroRVQ-Reconstruction"].info(timeout=EVENTUALLY_S)
    assert [(c.label, c.unit) for c in read_channels(rinfo)] == [
        (c, "microvolts") for c in CHANNELS]

    metrics, t = _pull_all(inlets["NeuroRVQ-Metrics"], 1)
    labels = [c.label for c in read_channels(inlets["NeuroRVQ-Metrics"].info(timeout=EVENTUALLY_S))]
    assert labels == [f"latency_{s}" for s in STAGES] + list(COUNTERS)
    row = dict(zip(labels, metrics[0], strict=True))
    assert (row["latency_inference"], row["windows_done"], row["windows_dropped"]) == (12.5, 8, 2)
    assert np.isnan(row["latency_preprocess"])
    np.testing.assert_allclose(t, [result.t_last], atol=EXACT_S, rtol=0)
