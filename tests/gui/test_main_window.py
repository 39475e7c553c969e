"""The main window, offscreen: real EEG through the real engines, drawn and grabbed to PNG."""

from pathlib import Path

import mne
import numpy as np
import pytest
from pyqtgraph.Qt import QtGui, QtWidgets

from neurorvq_stream.engines import load_classifier, load_tokenizer
from neurorvq_stream.gui import MainWindow, run_display
from neurorvq_stream.gui._app import save_screenshot, widget_pixels
from neurorvq_stream.gui._signals import RECONSTRUCTION_PEN, SIGNAL_PEN
from neurorvq_stream.streamer import ResultHub, WindowResult, bundled_recording
from neurorvq_stream.streamer._channel_mapping import map_channels
from neurorvq_stream.streamer._inlet import InletCounters
from neurorvq_stream.streamer._quality import ChannelFlag
from neurorvq_stream.streamer._results import InferenceCounts, RunInfo

# Its module-scoped fixtures are built once: every test of the module on one xdist worker.
pytestmark = pytest.mark.xdist_group("gui/test_main_window.py")

RATE = 200
N_PATCHES = 4
HOP = RATE // 2
N_CHANNELS = 16
T0 = 5000.0  # LSL time of the first sample of the excerpt


@pytest.fixture(scope="module")
def qapp() -> QtWidgets.QApplication:
    return QtWidgets.QApplication.instance() or QtWidgets.QApplication([])


@pytest.fixture(scope="module")
def results(parity_tokenizer, parity_classifier) -> list[WindowResult]:
    """Windows of a real BioSemi recording mapped by position, run through the engines."""
    raw = mne.io.read_raw_edf(bundled_recording("s01"), preload=True,
                              verbose=False).crop(5.0, 17.0)
    mapping = map_channels(raw.ch_names, montage="biosemi128")
    picks = list(mapping.source_indices[:N_CHANNELS])
    names = mapping.names[:N_CHANNELS]
    raw.pick(picks).resample(RATE, verbose=False)
    eeg = (raw.get_data() * 1e6).astype(np.float32)
    events = tuple(
        (T0 + onset - raw.first_time, str(label))  # annotation onsets count from the file start
        for onset, label in zip(raw.annotations.onset, raw.annotations.description, strict=True)
        if not str(label).startswith("bad")
    )
    size = N_PATCHES * RATE
    ends = range(size, eeg.shape[1] + 1, HOP)
    batch = np.stack([eeg[:, end - size : end] for end in ends])  # one engine call for all
    decoded = load_tokenizer(parity_tokenizer).reconstruct(batch, names)
    classifier = load_classifier(parity_classifier)
    probabilities = classifier.probabilities(batch, names)
    out = []
    for k, end in enumerate(ends):
        t_last = T0 + (end - 1) / RATE
        out.append(
            WindowResult(
                index=k,
                t_last=t_last,
                channels=names,
                source_channels=mapping.source_labels[:N_CHANNELS],
                signal=batch[k],
                n_patches=N_PATCHES,
                tokens=decoded["tokens"][:, :, k],
                reconstruction=decoded["reconstruction"][k],
                probabilities=probabilities[k],
                class_names=classifier.class_names,
                latency={"tokenize": 10.0 + k, "classify": 5.0},  # ms
                markers=tuple(m for m in events if t_last - size / RATE < m[0] <= t_last),
                label=classifier.class_names[0],
                marker_time=t_last - 1.0,
                truth=classifier.class_names[0],
                decision=classifier.class_names[int(np.argmax(probabilities[k]))],
            )
        )
    return out


def fill(results: list[WindowResult], stream_name: str = "", source_rate: float = 0.0,
         stream_state: str = "starting") -> ResultHub:
    hub = ResultHub()
    hub.report(RunInfo(stream_name=stream_name, source_rate=source_rate))
    hub.report(InletCounters(state=stream_state))
    for result in results:
        hub.publish(result)
    return hub


def grab(window: QtWidgets.QWidget, widget: QtWidgets.QWidget, tmp_path: Path) -> np.ndarray:
    """RGB pixels of ``widget`` as drawn inside the window's PNG screenshot."""
    return widget_pixels(window, widget, save_screenshot(window, tmp_path / "window.png"))


def count_color(pixels: np.ndarray, pen) -> int:
    rgb = np.array(pen.color().getRgb()[:3])
    return int((np.abs(pixels.astype(int) - rgb).sum(axis=2) < 30).sum())


def shown(qapp, window: MainWindow) -> MainWindow:
    window.show()
    window.refresh()
    qapp.processEvents()
    return window


def test_window_draws_real_results(qapp, results, tmp_path):
    hub = fill(results, stream_name="BioSemi replay", source_rate=256.0, stream_state="streaming")
    window = shown(qapp, MainWindow(hub))
    newest = results[-1]
    n_points = window.signals.max_points

    # signals: one curve, every shown channel full (15 s of windows fill the 10 s buffer)
    y = window.signals.signal_curve.yData
    assert y.size == N_CHANNELS * (n_points + 1)
    assert np.isfinite(y).sum() == N_CHANNELS * n_points
    assert np.isfinite(window.signals.reconstruction_curve.yData).sum() == N_CHANNELS * n_points
    ticks = [label for _, label in window.signals.getAxis("left")._tickLevels[0]]
    assert ticks == list(newest.channels)
    pixels = grab(window, window.signals, tmp_path)
    assert count_color(pixels, SIGNAL_PEN) > 2000
    assert count_color(pixels, RECONSTRUCTION_PEN) > 2000

    # markers of the replayed recording inside the 10 s view
    expected = sorted({m for r in results for m in r.markers if m[0] > newest.t_last - 10.0})
    drawn = window.signals.visible_markers()
    assert [label for _, label in drawn] == [label for _, label in expected]
    np.testing.assert_allclose([t for t, _ in drawn], [t - newest.t_last for t, _ in expected])

    # tokens: channels x patches of branch 1, level 0, as the engine produced them
    image = window.tokens.image_item.image
    assert image.shape == (N_CHANNELS, N_PATCHES)
    np.testing.assert_array_equal(image, newest.tokens[0, 0].reshape(N_CHANNELS, N_PATCHES))
    assert np.unique(image).size > 1
    assert window.tokens.usage.distinct_counts().size == 32

    # predictions: bars are the newest probabilities and sum to one
    bars = window.predictions.bar_heights()
    np.testing.assert_allclose(bars, newest.probabilities, rtol=1e-6)
    assert bars.sum() == pytest.approx(1.0, abs=1e-5)
    hits = [np.argmax(r.probabilities) == 0 for r in results]
    assert f"balanced accuracy: {np.mean(hits):.2f}" in window.predictions.accuracy_label.text()

    # status
    assert "BioSemi replay" in window.status.summary.text()
    assert set(window.status.latency_curves) == {"tokenize", "classify"}
    tokenize_ms = window.status.latency_curves["tokenize"].yData
    np.testing.assert_array_equal(tokenize_ms, [r.latency["tokenize"] for r in results])
    window.close()


def test_controls_change_what_is_drawn(qapp, results, tmp_path):
    hub = fill(results[:-4])
    window = shown(qapp, MainWindow(hub))
    names = list(results[0].channels)
    n_points = window.signals.max_points

    window.set_overlay(False)
    window.refresh()
    qapp.processEvents()
    assert not window.signals.reconstruction_curve.isVisible()
    assert count_color(grab(window, window.signals, tmp_path), RECONSTRUCTION_PEN) == 0

    window.select_channels(names[:3])
    window.refresh()
    assert np.isfinite(window.signals.signal_curve.yData).sum() == 3 * n_points
    window.select_channels(None)

    window.set_scale("per channel")
    window.refresh()
    rows = window.signals.signal_curve.yData.reshape(N_CHANNELS, n_points + 1)[:, :-1]
    centres = np.arange(N_CHANNELS - 1, -1, -1)
    assert (np.abs(np.median(rows, axis=1) - centres) < 0.5).all()

    newest = results[-5]
    window.set_token_view(3, 7)
    window.refresh()
    np.testing.assert_array_equal(
        window.tokens.image_item.image, newest.tokens[3, 7].reshape(N_CHANNELS, N_PATCHES)
    )
    window.set_token_view(None, None)
    window.refresh()
    assert window.tokens.image_item.image.shape == (N_CHANNELS, 32 * N_PATCHES)

    window.set_paused(True)
    frozen = window.signals.signal_curve.yData.copy()
    for result in results[-4:]:
        hub.publish(result)
    assert window.refresh() is False
    np.testing.assert_array_equal(window.signals.signal_curve.yData, frozen)
    hub.report(InletCounters(state="stalled", stalls=1))  # no new window, paused: still shown
    window.refresh()
    assert "stalled" in window.status.summary.text()
    assert "estimated accuracy" not in window.status.summary.text()  # none yet
    hub.report(InferenceCounts(estimated_accuracy=0.734))
    window.refresh()
    assert "estimated accuracy on this session: 0.73" in window.status.summary.text()
    window.set_paused(False)
    assert window.refresh() is True
    assert not np.array_equal(window.signals.signal_curve.yData, frozen)
    assert window.last_index == results[-1].index

    with pytest.raises(ValueError, match="level must be None"):
        window.set_token_view(0, 8)
    with pytest.raises(ValueError, match=r"\['T99'\] are not displayed"):
        window.select_channels(["T99"])
    with pytest.raises(ValueError, match="Unknown scale mode 'log'"):
        window.set_scale("log")
    window.close()


def test_flagged_channels_are_marked(qapp, results):
    flagged = results[0].channels[2]
    flags = np.zeros(N_CHANNELS, np.uint8)
    flags[2] = ChannelFlag.FLAT
    marked = [WindowResult(**{**vars(r), "flags": flags}) for r in results[:3]]
    window = shown(qapp, MainWindow(fill(marked)))
    y = window.signals.flagged_curve.yData
    assert (
        np.isfinite(y).sum()
        == np.isfinite(window.signals.signal_curve.yData.reshape(N_CHANNELS, -1)[2]).sum()
    )
    ticks = dict(window.signals.getAxis("left")._tickLevels[0])
    assert ticks[float(N_CHANNELS - 1 - 2)] == f"{flagged} [flat]"
    window.close()


def test_run_display_saves_a_screenshot(qapp, results, tmp_path):
    hub = fill(results, stream_name="replay", stream_state="streaming")
    path = tmp_path / "demo.png"
    assert run_display(hub, duration_s=0.5, screenshot=path) == 0
    image = QtGui.QImage(str(path))
    assert not image.isNull() and image.width() > 800
    assert len({image.pixel(x, y) for x in range(0, image.width(), 7) for y in (100, 400)}) > 5


def test_bad_display_arguments_are_refused(qapp, tmp_path):
    hub = ResultHub()
    with pytest.raises(ValueError, match="also pass duration_s"):
        run_display(hub, screenshot=tmp_path / "x.png")
    with pytest.raises(ValueError, match="duration_s must be positive"):
        run_display(hub, duration_s=0)
    with pytest.raises(FileNotFoundError, match="is missing"):
        run_display(hub, duration_s=5.0, screenshot=tmp_path / "nowhere" / "x.png")
    window = MainWindow(hub)
    with pytest.raises(ValueError, match=r"does not end in \.png"):
        save_screenshot(window, tmp_path / "x.jpg")
    with pytest.raises(FileNotFoundError, match="is missing"):
        save_screenshot(window, tmp_path / "nowhere" / "x.png")
    with pytest.raises(ValueError, match="refresh_hz must be positive"):
        MainWindow(hub, refresh_hz=0)
