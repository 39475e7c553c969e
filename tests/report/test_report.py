"""A session report made from a real recording: the bundled sub-s01 through the pipeline.

The recording is made here: the player replays 40 s of sub-s01 with its markers, the
pipeline runs the shipped tokenizer and checkerboard head on marker-locked windows, and
the recorder writes the EEG, the markers and all four outlets to one XDF file.
"""

import base64
import io
import re
import uuid

import matplotlib.image
import numpy as np
import pytest
from helpers import CLOCK_SYNC_S, EVENTUALLY_S, wait_until
from sklearn.metrics import balanced_accuracy_score

from neurorvq_stream.engines import shipped_model
from neurorvq_stream.report import FIGURES, load_session, make_report
from neurorvq_stream.report._figures import Budgets, score_decisions, token_usage
from neurorvq_stream.report._report import figure_makers
from neurorvq_stream.streamer import Pipeline, Player, bundled_recording, load_recording
from neurorvq_stream.streamer._config import RunConfig
from neurorvq_stream.streamer._recorder import Recorder, StreamQuery

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


def test_session_finds_the_pipeline_streams_by_type_and_metadata(recording):
    path, replay, status = recording
    session = load_session(path)
    assert session.eeg is not None and session.eeg.data.shape == replay.data.shape
    np.testing.assert_array_equal(session.eeg.data, replay.data)
    assert [m for _, m in session.markers] == [label for _, label in replay.events]
    assert session.predictions.labels == ["checker-left", "checker-right"]
    assert len(session.predictions.times) == status.windows_done >= 5
    assert len(session.metrics.times) == status.windows_done
    assert session.tokens.layout["n_patches"] == "1"
    assert session.window_seconds == 1.0
    assert session.meta["source_stream"] == session.eeg.name
    # Every checker trial is scored from its own decision (which names its marker), and the
    # scorer agrees with scikit-learn.
    scorer, times = score_decisions(session)
    n_checker = sum(label.startswith("checker") for _, label in replay.events)
    assert len(scorer.trials) == len(times) == len(session.predictions.times) == n_checker
    np.testing.assert_allclose(times, session.predictions.times, atol=CLOCK_SYNC_S)
    recorded_markers = [t for t, m in session.markers if m.startswith("checker")]
    np.testing.assert_allclose([t.marker_time for t in scorer.trials], recorded_markers,
                               atol=CLOCK_SYNC_S)
    np.testing.assert_allclose(np.stack([t.probabilities for t in scorer.trials]),
                               session.predictions.data, atol=1e-6)
    truth = [t.truth for t in scorer.decided]
    decided = [scorer.class_names.index(t.decision) for t in scorer.decided]
    assert scorer.coverage() == 1.0
    assert scorer.balanced_accuracy() == pytest.approx(balanced_accuracy_score(truth, decided))
    distinct, perplexity, n = token_usage(session.tokens)
    assert n == status.windows_done and distinct.shape == (4, 8)
    assert np.all(distinct >= 1) and np.all(perplexity <= distinct + 1e-9)


def _figures_in(html: str) -> dict[str, np.ndarray]:
    """Each figure embedded in the report, decoded, by its title (the image's alt text)."""
    found = re.findall(r'<img class="figure-img[^>]*alt="([^"]+)"\s+src="data:image/png;'
                       r'base64,([A-Za-z0-9+/=]+)"', html)
    return {title: matplotlib.image.imread(io.BytesIO(base64.b64decode(png)), format="png")
            for title, png in found}


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


def test_every_figure_plots_the_recorded_data(recording):
    session = load_session(recording[0])
    for title, make in figure_makers(Budgets(50, 500, 1000, "test")).items():
        fig, caption = make(session)
        # A figure saying what is missing plots nothing; the smallest real one is the
        # 2 x 2 confusion matrix.
        assert _plotted_values(fig) >= 4, (title, caption)


def test_report_refuses_a_bad_path(tmp_path, recording):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        make_report(tmp_path / "none.xdf", tmp_path / "r.html", progress=False)
    with pytest.raises(ValueError, match=r"must be an \.html file"):
        make_report(recording[0], tmp_path / "r.pdf", progress=False)
