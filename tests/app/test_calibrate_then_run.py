"""A decoder calibrated by the real command line, then run live: its window spec travels.

sub-s01 is calibrated from its file with the real ``calibrate`` command; the decoder then
classifies a live replay of held-out sub-s02 through the real pipeline (windows cut as the
file's spec says, no window settings given to the run), and the live predictions equal the
offline ones window for window. A running pipeline swaps between decoder kinds.
"""

import json
import uuid

import numpy as np
import pylsl
import pytest
from helpers import EVENTUALLY_S, wait_until

from neurorvq_stream._closed_loop import run_checker_closed_loop
from neurorvq_stream.cli import main
from neurorvq_stream.decoders import WindowSpec, load_decoder
from neurorvq_stream.decoders._persistence import decoder_metadata
from neurorvq_stream.engines._checkpoint import sidecar_path
from neurorvq_stream.streamer import Pipeline, Player, RunConfig, bundled_recording, load_recording

# Its module-scoped fixtures are built once: every test of the module on one xdist worker.
pytestmark = [pytest.mark.xdist_group("app/test_calibrate_then_run.py"), pytest.mark.slow]


@pytest.fixture(scope="module")
def calibrated(tmp_path_factory) -> str:
    """An amplitude decoder of checker left/right, calibrated from sub-s01's file."""
    out = tmp_path_factory.mktemp("calibrated") / "checker"
    code = main(["calibrate", "--recording", str(bundled_recording("s01")),
                 "--montage", "biosemi128", "--classes", "checker-left", "checker-right",
                 "--marker-offset", "0.05", "--patches", "1", "--decoders", "amplitude-lr",
                 "--output", str(out)])
    assert code == 0
    return str(out.with_suffix(".skops"))


def test_the_window_spec_travels_from_calibration_to_the_live_run(calibrated):
    decoder = load_decoder(calibrated)
    assert (decoder.kind, decoder.spec.mode, decoder.spec.marker_offset) == (
        "amplitude-lr", "markers", 0.05)
    report = run_checker_closed_loop(speed=1.0, tmax=30.0, classifier=calibrated, quiet=True)
    assert report.windows_dropped == 0
    assert len(report.live) == len(report.offline_marker_times) >= 6
    for window in report.live:
        k = int(np.argmin(np.abs(report.offline_marker_times - window.marker_time)))
        assert abs(report.offline_marker_times[k] - window.marker_time) < 5e-3
        np.testing.assert_allclose(window.probabilities, report.offline_probabilities[k],
                                   atol=1e-4)


def _described_kind(source_id: str) -> str:
    """The decoder kind the predictions outlet with ``source_id`` says it carries."""
    kinds = []
    for info in pylsl.resolve_byprop("source_id", source_id, minimum=1, timeout=EVENTUALLY_S):
        inlet = pylsl.StreamInlet(info)
        kinds.append(inlet.info(timeout=EVENTUALLY_S).desc().child("neurorvq")
                     .child_value("classifier_kind"))
    return ",".join(sorted(kinds))


def test_a_run_swaps_between_decoder_kinds(calibrated, parity_classifier, tmp_path):
    name = f"swap-{uuid.uuid4().hex[:6]}"
    replay = load_recording(bundled_recording("s02"), montage="biosemi128", tmax=90.0)
    player = Player(replay, name=name, chunk_seconds=0.02)
    config = RunConfig.from_dict({
        "stream": {"name": name, "resolve_timeout": EVENTUALLY_S, "stall_timeout": 5.0},
        "markers": {"name": f"{name}-Markers"}, "mapping": {"montage": "biosemi128"},
        "models": {"tokenizer": "none", "classifier": calibrated, "watch_classifier": False},
        "budgets": {"end_to_end_ms": 10_000.0, "inference_ms": 10_000.0},
        "outlets": {"source_id": f"{name}-out", "tokens": False, "reconstruction": False},
    })
    pipe = Pipeline(config).start()
    player.start()
    predictions = f"{name}-out-predictions"
    try:
        wait_until(lambda: any(r.probabilities is not None for r in pipe.hub.since(-1)),
                   "a decision of the amplitude decoder")
        assert _described_kind(predictions) == "amplitude-lr"
        # A NeuroRVQ head (another kind, 4 classes, 1 s from each checker marker) takes over.
        spec = WindowSpec(mode="markers", n_patches=1, marker_offset=0.0,
                          labels=("checker-left", "checker-right"), channels=pipe.channels[:10])
        head = tmp_path / "head.pt"
        sidecar_path(head).write_text(json.dumps(decoder_metadata(
            "neurorvq-head", tuple(f"class{k}" for k in range(4)), spec, {}, {}, {}, {})))
        head.write_bytes(parity_classifier.read_bytes())
        pipe.swap_classifier(head)
        wait_until(lambda: any(r.class_names[:1] == ("class0",) for r in pipe.hub.since(-1)),
                   "a decision of the NeuroRVQ head")
        # Other classes, other channels: a new predictions outlet (its own source_id).
        wait_until(lambda: _described_kind(f"{predictions}-2") == "neurorvq-head",
                   "the new predictions outlet to describe the head")
    finally:
        pipe.stop()
        player.stop()
    decided = [r.class_names for r in pipe.hub.since(-1) if r.probabilities is not None]
    first_head = decided.index(tuple(f"class{k}" for k in range(4)))
    assert set(decided[:first_head]) == {("checker-left", "checker-right")}
    assert set(decided[first_head:]) == {tuple(f"class{k}" for k in range(4))}
    assert pipe.hub.status().last_error == ""
