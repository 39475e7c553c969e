"""A session report made from a real recording: the bundled sub-s01 through the pipeline.

The recording is made here: the player replays 40 s of sub-s01 with its markers, the
pipeline runs the shipped tokenizer and checkerboard head on marker-locked windows, and
the recorder writes the EEG, the markers and all four outlets to one XDF file.
"""

import base64
import dataclasses
import io
import re
import uuid
from pathlib import Path

import matplotlib.image
import numpy as np
import pytest
from helpers import CLOCK_SYNC_S, EVENTUALLY_S, wait_until
from sklearn.metrics import balanced_accuracy_score

from neurorvq_stream.engines import shipped_model
from neurorvq_stream.report import load_session, make_report
from neurorvq_stream.report._figures import (
    Budgets,
    counter_steps,
    predictions_over_time,
    score_decisions,
    stream_health,
    token_usage,
)
from neurorvq_stream.report._report import FIGURES, _mapping_html, _summary_html, figure_makers
from neurorvq_stream.report._session import Session, Stream
from neurorvq_stream.streamer import Pipeline, Player, bundled_recording, load_recording
from neurorvq_stream.streamer._config import RunConfig
from neurorvq_stream.streamer._quality import FLAG_NAMES
from neurorvq_stream.streamer._recorder import Recorder, StreamQuery

# Its module-scoped fixtures are built once: every test of the module on one xdist worker.
pytestmark = pytest.mark.xdist_group("report/test_report.py")

SECONDS = 40.0


@pytest.fixture(scope="module")
def recording(tmp_path_factory):
    """XDF of a 40 s live session (made once for the module)."""
    name = f"report-{uuid.uuid4().hex[:8]}"
    replay = load_recording(bundled_recording("s01"), montage="biosemi128", tmin=20.0,
                            tmax=20.0 + SECONDS)
    player = Player(replay, name=name, chunk_seconds=0.02)
    config = RunConfig.from_dict({
        "stream": {"name": name, "resolve_timeout": EVENTUALLY_S},
        "markers": {"name": f"{name}-Markers", "labels": ["checker-left", "checker-right"]},
        "windows": {"mode": "markers", "n_patches": 1, "marker_offset": 0.0,
                    "marker_length": 1},
        "mapping": {"montage": "biosemi128"},
        "models": {"tokenizer": str(shipped_model("tokenizer")),
                   "classifier": str(shipped_model("classifier")),
                   "watch_classifier": False},
        "budgets": {"end_to_end_ms": 5000.0, "inference_ms": 5000.0},
        "outlets": {"source_id": f"{name}-out"},
    })
    path = tmp_path_factory.mktemp("report") / "session.xdf"
    queries = [StreamQuery(source_id=f"{name}-out-{kind}")
               for kind in ("predictions", "decisions", "tokens", "reconstruction", "metrics")]
    queries += [StreamQuery(source_id=player.source_id),
                StreamQuery(source_id=f"{player.source_id}-markers")]
    pipe = Pipeline(config).start()
    try:
        with Recorder(path, queries):
            player.start()
            player.join(SECONDS + 20.0)
            # Every checker marker whose 1 s window lies inside the replay gets a result.
            expected = sum(1 for onset, label in replay.events
                           if label.startswith("checker") and onset + 1.2 < replay.duration)
            wait_until(lambda: pipe.hub.status().windows_done >= expected,
                       f"{expected} windows published")
    finally:
        pipe.stop()
        player.stop()
    return path, replay, pipe.hub.status()


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:A single label was found:UserWarning")  # first trials
def test_session_finds_the_pipeline_streams_by_type_and_metadata(recording):
    path, replay, status = recording
    session = load_session(path)
    assert session.eeg is not None and session.eeg.data.shape == replay.data.shape
    np.testing.assert_array_equal(session.eeg.data, replay.data)
    assert [m for _, m in session.markers] == [label for _, label in replay.events]
    (predictions,) = session.predictions
    assert predictions.labels == ["checker-left", "checker-right"]
    assert len(predictions.times) == status.windows_done >= 5
    assert len(session.metrics.times) == status.windows_done
    assert session.tokens.layout["n_patches"] == "1"
    assert session.window_seconds == 1.0
    assert session.meta["source_stream"] == session.eeg.name
    assert session.metrics.flag_bits == {name: int(flag) for flag, name in FLAG_NAMES}
    assert len(session.mapping) == len(session.reconstruction.labels)
    # Every checker trial is scored from its own decision (which names its marker), and the
    # scorer agrees with scikit-learn, after every trial.
    (scored,) = score_decisions(session)
    scorer, times = scored.scorer, scored.times
    n_checker = sum(label.startswith("checker") for _, label in replay.events)
    assert len(scorer.trials) == len(times) == len(predictions.times) == n_checker
    np.testing.assert_allclose(times, predictions.times, atol=CLOCK_SYNC_S)
    recorded_markers = [t for t, m in session.markers if m.startswith("checker")]
    np.testing.assert_allclose([t.marker_time for t in scorer.trials], recorded_markers,
                               atol=CLOCK_SYNC_S)
    np.testing.assert_allclose(np.stack([t.probabilities for t in scorer.trials]),
                               predictions.data, atol=1e-6)
    truth = [t.truth for t in scorer.decided]
    decided = [scorer.class_names.index(t.decision) for t in scorer.decided]
    assert scorer.coverage() == 1.0
    np.testing.assert_allclose(scored.running, [
        balanced_accuracy_score(truth[:k], decided[:k]) for k in range(1, n_checker + 1)])
    assert scored.running[-1] == scorer.balanced_accuracy()
    distinct, perplexity, n = token_usage(session.tokens)
    assert n == status.windows_done and distinct.shape == (4, 8)
    assert np.all(distinct >= 1) and np.all(perplexity <= distinct + 1e-9)


def _figures_in(html: str) -> dict[str, np.ndarray]:
    """Each figure embedded in the report, decoded, by its title (the image's alt text)."""
    found = re.findall(r'<img class="figure-img[^>]*alt="([^"]+)"\s+src="data:image/png;'
                       r'base64,([A-Za-z0-9+/=]+)"', html)
    return {title: matplotlib.image.imread(io.BytesIO(base64.b64decode(png)), format="png")
            for title, png in found}


@pytest.mark.slow
def test_report_has_every_figure_and_none_is_empty(recording, tmp_path):
    path, _, status = recording
    out = make_report(path, tmp_path / "session.html", progress=False)
    html = out.read_text()
    titles = [t for group in FIGURES.values() for t in group]
    images = _figures_in(html)
    for title in titles:
        assert title in images, f"{title!r} missing from the report"
        image = images[title][..., :3]
        # Not a blank frame: a good share of the pixels carry ink, in several colours.
        inked = np.mean(image.min(axis=-1) < 0.9)
        assert inked > 0.02, (title, inked)
        assert len(np.unique(image.reshape(-1, 3), axis=0)) > 50, title
    # Captions carry the numbers, and nothing says data was missing.
    assert f"{status.windows_done} windows" in html
    assert "balanced accuracy 0." in html or "balanced accuracy 1.000" in html
    for missing in ("No EEG stream", "No metrics stream", "No predictions", "No tokens",
                    "No reconstruction", "cannot be matched"):
        assert missing not in html, missing
    assert "<script src=\"http" not in html  # self-contained
    # The whole channel mapping as published, one row per pair.
    for source, target in load_session(path).mapping:
        assert f"<td>{source}</td><td>{target}</td>" in html


def _plotted_values(fig) -> int:
    """How many finite data values the figure's lines, point sets and images show."""
    n = 0
    for ax in fig.axes:
        for line in ax.get_lines():
            n += int(np.isfinite(np.asarray(line.get_ydata(), float)).sum())
        for collection in ax.collections:
            n += len(collection.get_offsets()) if hasattr(collection, "get_offsets") else 0
        for image in ax.get_images():
            n += int(np.size(image.get_array()))
    return n


@pytest.mark.slow
def test_every_figure_plots_the_recorded_data(recording):
    session = load_session(recording[0])
    for title, make in figure_makers(Budgets(50, 500, 1000, "test")).items():
        fig, caption = make(session)
        # A figure saying what is missing plots nothing; the smallest real one is the
        # 2 x 2 confusion matrix.
        assert _plotted_values(fig) >= 4, (title, caption)


@pytest.mark.slow
def test_report_refuses_a_bad_path(tmp_path, recording):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        make_report(tmp_path / "none.xdf", tmp_path / "r.html", progress=False)
    with pytest.raises(ValueError, match=r"must be an \.html file"):
        make_report(recording[0], tmp_path / "r.pdf", progress=False)


def _published_session() -> Session:
    """20 s built from arrays: EEG without a missing stamp, and a Metrics stream that says
    the pipeline counted 1 gap and 100 lost samples before its 11th window and flagged cz
    flat in windows 4-7 and fz non-finite and clipped in window 6; it has a channel the
    report does not know and lacks the stalls counter."""
    times = 1000.0 + np.arange(2000) / 100.0
    eeg = Stream("amp", "EEG", "amp-1", 100.0, ["Fz", "Cz", "EXG1"], ["uV"] * 3, times,
                 np.zeros((2000, 3)))
    labels = ["latency_end_to_end", "gaps", "samples_lost", "windows_dropped", "markers_skipped",
              "measured_rate_hz", "a_new_counter", "flags_fz", "flags_cz"]
    data = np.zeros((19, len(labels)))
    data[10:, labels.index("gaps")] = 1
    data[10:, labels.index("samples_lost")] = 100
    data[:, labels.index("measured_rate_hz")] = 100.0
    data[3:7, labels.index("flags_cz")] = 4
    data[5, labels.index("flags_fz")] = 1 | 2
    meta = {"mapping": "Fz:fz,Cz:cz", "engine": "onnxruntime-cpu fp32, " + "detail " * 100}
    metrics = Stream("amp-NeuroRVQ-Metrics", "Metrics", "amp-1-neurorvq-metrics", 0.0, labels,
                     [""] * len(labels), 1000.0 + np.arange(1, 20), data, meta=meta,
                     flag_bits={"nonfinite": 1, "clipped": 2, "flat": 4})
    return Session(Path("published.xdf"), [eeg, metrics], eeg, [], metrics=metrics)


def test_stream_health_shows_what_the_pipeline_published():
    session = _published_session()
    metrics, t0 = session.metrics, session.t0
    np.testing.assert_array_equal(counter_steps(metrics, "gaps", t0), [[1010.0, 1011.0, 1.0]])
    np.testing.assert_array_equal(counter_steps(metrics, "samples_lost", t0)[:, 2], [100.0])
    assert counter_steps(metrics, "stalls", t0).shape == (0, 3)
    fig, caption = stream_health(session)
    assert "gaps 1" in caption and "samples lost 100" in caption and "stalls 0" not in caption
    assert "2 of 2 channels flagged in some window (nonfinite 1, clipped 1, flat 1)" in caption
    fig.savefig(io.BytesIO(), format="png")  # lays the figure out
    for ax in fig.axes:  # each legend is short and beside its axes, not over the data
        legend = ax.get_legend()
        assert legend is not None and len(legend.get_texts()) <= 4
        assert not legend.get_window_extent().overlaps(ax.get_window_extent())
    bands = {(round(p.get_x(), 6), round(p.get_x() + p.get_width(), 6))
             for p in fig.axes[0].patches if type(p).__name__ == "Rectangle"}
    assert bands == {(10.0, 11.0)}  # between the two Metrics samples the counters stepped
    cells = fig.axes[-1].collections[0].get_array().reshape(2, -1)[:, ::2]  # windows only
    np.testing.assert_array_equal(cells[1], [0, 0, 0, 3, 3, 3, 3] + [0] * 12)  # cz: flat
    np.testing.assert_array_equal(cells[0], [0] * 5 + [1] + [0] * 13)  # fz: nonfinite first


def test_report_tables_wrap_whole_values_and_list_the_mapping():
    session = _published_session()
    summary = _summary_html(session)
    assert session.meta["engine"].strip() in summary  # whole, not cut
    assert "table-layout:fixed" in summary and "overflow-wrap:anywhere" in summary
    mapping = _mapping_html(session)
    assert "<td>0</td><td>Fz</td><td>fz</td>" in mapping
    assert "<td>1</td><td>Cz</td><td>cz</td>" in mapping
    assert "Not used (1): EXG1." in mapping


def test_predictions_figure_shows_the_estimate_the_run_published():
    session = _published_session()
    metrics = session.metrics
    estimate = np.where(np.arange(len(metrics.times)) < 10, np.nan, 0.8125)
    session.metrics = dataclasses.replace(
        metrics, labels=[*metrics.labels, "estimated_accuracy"],
        data=np.column_stack([metrics.data, estimate]))
    p = np.linspace(0.2, 0.8, len(metrics.times))
    session.predictions = [Stream("amp-NeuroRVQ-Predictions", "Predictions", "amp-1-p", 0.0,
                                  ["left", "right"], ["", ""], metrics.times,
                                  np.column_stack([1 - p, p]), meta=metrics.meta)]
    fig, caption = predictions_over_time(session)
    assert "the classes of the trials before), 0.812 at the end" in caption
    drawn = [line for line in fig.axes[1].get_lines()
             if line.get_label() == "estimated accuracy (the run's own)"]
    assert len(drawn) == 1
    y = np.asarray(drawn[0].get_ydata(), float)
    assert np.isnan(y).sum() >= 10 and set(y[np.isfinite(y)]) == {0.8125}
