"""End to end: real recording -> LSL player on loopback -> Pipeline -> hub -> window -> PNG."""

import time
import uuid

import numpy as np
import pytest
from pyqtgraph.Qt import QtWidgets

from neurorvq_stream.gui import MainWindow
from neurorvq_stream.gui._app import save_screenshot, widget_pixels
from neurorvq_stream.gui._signals import SIGNAL_PEN
from neurorvq_stream.streamer import (
    Pipeline,
    Player,
    Recording,
    RunConfig,
    bundled_recording,
    load_recording,
)

pytestmark = pytest.mark.slow  # live streams in real time

N_CHANNELS = 16
N_PATCHES = 2


@pytest.fixture
def live_pipeline(parity_tokenizer, parity_classifier):
    """The bundled BioSemi recording (16 channels, positions in the stream) being processed."""
    full = load_recording(bundled_recording("s01"), montage="biosemi128", tmin=5.0, tmax=40.0)
    recording = Recording(
        full.data[:, :N_CHANNELS], full.sfreq, full.channels[:N_CHANNELS], full.events
    )
    name = f"gui-{uuid.uuid4().hex[:8]}"
    player = Player(recording, name=name, chunk_seconds=0.02)
    player.start()
    config = RunConfig.from_dict(
        {
            "stream": {"name": name, "resolve_timeout": 30.0},
            "markers": {"name": f"{name}-Markers"},
            "windows": {"n_patches": N_PATCHES, "hop": 0.5},
            "models": {
                "tokenizer": str(parity_tokenizer),
                "classifier": str(parity_classifier),
                "watch_classifier": False,
            },
            "budgets": {"end_to_end_ms": 5000.0, "inference_ms": 5000.0},
            "outlets": {"source_id": f"{name}-out"},
        }
    )
    pipeline = Pipeline(config).start()
    yield pipeline
    pipeline.stop()
    player.stop()


def test_display_of_a_live_pipeline(live_pipeline, tmp_path):
    app = QtWidgets.QApplication.instance() or QtWidgets.QApplication([])
    window = MainWindow(live_pipeline.hub)
    window.show()
    window.start()  # refreshed by its own QTimer, as in the application
    deadline = time.monotonic() + 30.0
    while window.last_index < 4 and time.monotonic() < deadline:
        app.processEvents()
        time.sleep(0.02)
    window.timer.stop()
    window.refresh()  # take whatever arrived after the last tick
    app.processEvents()
    newest = window.newest
    assert newest is not None and window.last_index >= 4, "the pipeline produced no windows"
    n_channels = len(newest.channels)
    assert n_channels == len(live_pipeline.hub.status().mapping) > 0  # mapped by position

    # signal traces: each channel has the same number of samples so far, drawn in the PNG
    y = window.signals.signal_curve.yData.reshape(n_channels, -1)
    per_channel = np.isfinite(y).sum(axis=1)
    assert per_channel.min() == per_channel.max() > 0
    png = save_screenshot(window, tmp_path / "live.png")
    pixels = widget_pixels(window, window.signals, png)
    trace = np.array(SIGNAL_PEN.color().getRgb()[:3])
    assert (np.abs(pixels.astype(int) - trace).sum(axis=2) < 30).sum() > 200

    # token image: channels x patches of the newest window, not one flat colour
    token_image = window.tokens.image_item.image
    assert token_image.shape == (n_channels, N_PATCHES)
    np.testing.assert_array_equal(token_image, newest.tokens[0, 0].reshape(n_channels, N_PATCHES))
    assert np.unique(window.tokens.image_item.image).size > 1

    # probability bars of the newest window sum to one
    assert window.predictions.bar_heights().sum() == pytest.approx(1.0, abs=1e-5)

    # status: the stream the pipeline opened, its mapping and the measured latencies
    status = live_pipeline.hub.status()
    assert status.stream_name in window.status.summary.text()
    assert newest.source_channels[0] in window.status.mapping_view.toPlainText()
    assert window.status.latency_curves
    window.close()
