"""Result outlets: metadata, layouts, and stamps in the source clock of the window."""

import json
import uuid

import numpy as np
import pylsl
import pytest
from helpers import EVENTUALLY_S, wait_until

from neurorvq_stream.decoders import WindowSpec, load_decoder
from neurorvq_stream.streamer._inlet import InletCounters
from neurorvq_stream.streamer._lsl import find_streams, read_channels
from neurorvq_stream.streamer._models import BoundDecoder
from neurorvq_stream.streamer._outlets import (
    OutletIdentity,
    ResultOutlets,
    metrics_labels,
    run_tag,
)
from neurorvq_stream.streamer._quality import ChannelFlag
from neurorvq_stream.streamer._results import (
    InferenceCounts,
    PipelineStatus,
    ProcessingCounts,
    WindowResult,
)

# Its module-scoped fixtures are built once: every test of the module on one xdist worker.
pytestmark = pytest.mark.xdist_group("streamer/test_outlets.py")

CHANNELS = ("fp1", "cz", "o2")
N_PATCHES, HOP = 2, 100
# Uncorrected stamps travel as doubles; liblsl may send a regular sample's stamp as
# "previous + 1/rate" and recompute it on arrival, which rounds at ~1e-11 s here.
EXACT_S = 1e-9


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


@pytest.fixture(scope="module")
def classifier(parity_classifier) -> BoundDecoder:
    """The parity head (4 classes, no window record) as a run on CHANNELS binds it."""
    spec = WindowSpec(mode="sliding", n_patches=N_PATCHES, marker_offset=0.0, labels=(),
                      channels=CHANNELS)
    return BoundDecoder.bind(load_decoder(parity_classifier, run_spec=spec),
                             parity_classifier, CHANNELS)


def test_each_outlet_carries_the_window_time_and_its_layout(classifier):
    source = f"amp-{uuid.uuid4().hex[:8]}"
    identity = OutletIdentity.derive(source, f"{source}-sid")
    rng = np.random.default_rng(1)
    outlets = ResultOutlets(identity, CHANNELS, N_PATCHES, HOP, {"engine": "pytorch-cpu"},
                            token_layout=(4, 8), classifier=classifier)
    kinds = ("Predictions", "Tokens", "Reconstruction", "Metrics")
    inlets = {kind: _inlet(f"{source}-NeuroRVQ-{kind}", f"{source}-sid-neurorvq-{kind.lower()}")
              for kind in kinds}
    n_tok = len(CHANNELS) * N_PATCHES
    flags = np.array([0, ChannelFlag.FLAT, ChannelFlag.NONFINITE | ChannelFlag.CLIPPED],
                     np.uint8)
    result = WindowResult(
        index=7, t_last=pylsl.local_clock() - 0.123, channels=CHANNELS,
        source_channels=("Fp1", "Cz", "O2"), signal=np.zeros((3, 400), np.float32),
        n_patches=N_PATCHES,
        tokens=rng.integers(0, 8192, (4, 8, n_tok)),
        reconstruction=rng.standard_normal((3, 400)).astype(np.float32),
        probabilities=np.array([0.1, 0.2, 0.3, 0.4], np.float32),
        class_names=classifier.class_names,
        latency={"inference": 12.5, "end_to_end": 20.0}, flags=flags,
    )
    outlets.push(result)
    status = PipelineStatus(stream=InletCounters(measured_rate=250.0),
                            processing=ProcessingCounts(windows_replaced=2),
                            inference=InferenceCounts(windows_done=8, estimated_accuracy=0.75))
    outlets.push_metrics(result, status)

    probs, t = _pull_all(inlets["Predictions"], 1)
    np.testing.assert_allclose(probs[0], [0.1, 0.2, 0.3, 0.4])
    np.testing.assert_allclose(t, [result.t_last], atol=EXACT_S)
    pinfo = inlets["Predictions"].info(timeout=EVENTUALLY_S)
    assert [c.label for c in read_channels(pinfo)] == [f"class{k}" for k in range(4)]
    run = pinfo.desc().child("neurorvq")
    assert run.child_value("engine") == "pytorch-cpu"
    assert run.child_value("classifier_kind") == "neurorvq-head"
    assert json.loads(run.child_value("classifier_window"))["channels"] == list(CHANNELS)

    tokens, t = _pull_all(inlets["Tokens"], 1)
    tokens = tokens[0].reshape(4, 8, len(CHANNELS), N_PATCHES)
    # layout index ((branch*8 + level)*C + channel)*A + patch; engine index k = channel*A + patch
    np.testing.assert_array_equal(tokens[2, 5, 1, 0], result.tokens[2, 5, 1 * N_PATCHES + 0])
    np.testing.assert_array_equal(tokens.reshape(4, 8, -1), result.tokens)
    np.testing.assert_allclose(t, [result.t_last], atol=EXACT_S)
    layout = inlets["Tokens"].info(timeout=EVENTUALLY_S).desc().child("layout")
    assert layout.child_value("channels") == ",".join(CHANNELS)
    assert (layout.child_value("n_branches"), layout.child_value("n_levels")) == ("4", "8")

    rec, t = _pull_all(inlets["Reconstruction"], HOP)
    np.testing.assert_allclose(rec, result.reconstruction[:, -HOP:].T)
    np.testing.assert_allclose(t[-1], result.t_last, atol=EXACT_S)
    np.testing.assert_allclose(np.diff(t), 1 / 200, atol=EXACT_S)
    rinfo = inlets["Reconstruction"].info(timeout=EVENTUALLY_S)
    assert rinfo.type() == "Reconstruction"
    assert [(c.label, c.unit) for c in read_channels(rinfo)] == [
        (c, "microvolts") for c in CHANNELS]

    metrics, t = _pull_all(inlets["Metrics"], 1)
    minfo = inlets["Metrics"].info(timeout=EVENTUALLY_S)
    labels = [c.label for c in read_channels(minfo)]
    assert labels == metrics_labels(CHANNELS)
    row = dict(zip(labels, metrics[0], strict=True))
    assert (row["latency_inference"], row["windows_done"], row["windows_dropped"]) == (12.5, 8, 2)
    assert (row["flagged_flat"], row["flagged_nonfinite"], row["measured_rate_hz"]) == (1, 1, 250)
    assert row["estimated_accuracy"] == 0.75
    assert [row[f"flags_{c}"] for c in CHANNELS] == flags.tolist()
    assert minfo.desc().child("flags").child_value("flat") == str(int(ChannelFlag.FLAT))
    assert np.isnan(row["latency_preprocess"])
    np.testing.assert_allclose(t, [result.t_last], atol=EXACT_S)


def test_identities_follow_the_input_stream_or_the_configuration():
    a = OutletIdentity.derive("RoomA-EEG", "amp-serial-17")
    b = OutletIdentity.derive("RoomB-EEG", "amp-serial-18")
    assert a.stream_name("Predictions") == "RoomA-EEG-NeuroRVQ-Predictions"
    assert a.stream_source_id("Predictions") == "amp-serial-17-neurorvq-predictions"
    assert a != b and a == OutletIdentity.derive("RoomA-EEG", "amp-serial-17")
    # No source_id on the input: the name stands in, so a restart still gives the same ids.
    assert OutletIdentity.derive("Amp", "").source_id == "Amp-neurorvq"
    mine = OutletIdentity.derive("RoomA-EEG", "amp-serial-17", name="Subj1", source_id="s1")
    assert (mine.stream_name("Tokens"), mine.stream_source_id("Tokens")) == (
        "Subj1-Tokens", "s1-tokens")


def test_an_identity_is_taken_by_any_stream_with_one_of_its_names_or_source_ids():
    ours = OutletIdentity.derive("Amp", "amp-1")
    replayed = [pylsl.StreamInfo("Amp-NeuroRVQ-Tokens", "Tokens", 1, 0, "int32", "other"),
                pylsl.StreamInfo("Elsewhere", "Metrics", 1, 0, "float32", "amp-1-neurorvq-metrics"),
                pylsl.StreamInfo("Amp", "EEG", 1, 250, "float32", "amp-1")]
    assert [i.name() for i in ours.holders(replayed)] == ["Amp-NeuroRVQ-Tokens", "Elsewhere"]
    tagged = ours.tagged(run_tag("4f1c2a9e-77d0-4b1e-9a65-0c2d9e1f3b7a"))
    assert tagged.stream_name("Predictions") == "Amp-NeuroRVQ-4f1c2a9e-Predictions"
    assert tagged.stream_source_id("Predictions") == "amp-1-neurorvq-4f1c2a9e-predictions"
    assert tagged.holders(replayed) == []
