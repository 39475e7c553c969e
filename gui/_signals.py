"""The scrolling EEG panel: every channel in one curve, reconstruction in a second one.

pyqtgraph pays per item, not per point: 64 curves of 1000 points cost 25-30 ms a frame
where one NaN-separated curve of the same points costs 7 ms (measured on the development
machines). So all channels are stacked into one array with a NaN after each channel and drawn with
``connect='finite'``; flagged channels get one more such curve on top.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg

from ._models import SignalBuffer

SIGNAL_PEN = pg.mkPen((30, 30, 30), width=1)
RECONSTRUCTION_PEN = pg.mkPen((220, 90, 20), width=1)
FLAGGED_PEN = pg.mkPen((200, 0, 0), width=1)
MARKER_PEN = pg.mkPen((40, 110, 220), width=1, style=pg.QtCore.Qt.PenStyle.DashLine)


def peak_decimate(times: np.ndarray, data: np.ndarray, max_points: int) -> tuple[np.ndarray, ...]:
    """Reduce (C, N) ``data`` to at most ``max_points`` per channel, keeping each bin's extremes.

    Plain subsampling hides spikes and clipping, the very things a user watches for; the
    min/max pair of each bin keeps them. NaN (gaps) survive only where a whole bin is NaN.
    """
    n = data.shape[1]
    if n <= max_points:
        return times, data
    factor = -(-n // (max_points // 2))
    n_bins = n // factor
    start = n - n_bins * factor  # align bins on the newest sample
    binned = data[:, start:].reshape(data.shape[0], n_bins, factor)
    out = np.empty((data.shape[0], 2 * n_bins), dtype=data.dtype)
    low, high = out[:, 0::2], out[:, 1::2]
    low[:] = binned[:, :, 0]
    high[:] = binned[:, :, 0]
    for k in range(1, factor):  # a few whole-array ops beat a ufunc.reduce over a short axis
        np.fmin(low, binned[:, :, k], out=low)
        np.fmax(high, binned[:, :, k], out=high)
    bin_times = times[start:].reshape(n_bins, factor)
    out_times = np.empty(2 * n_bins, dtype=times.dtype)
    out_times[0::2] = bin_times[:, 0]
    out_times[1::2] = bin_times[:, -1]
    return out_times, out


def _finite_mean_std(data: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel mean and std over finite samples; 0 for channels with none (no warnings)."""
    finite = np.isfinite(data)
    count = np.maximum(finite.sum(axis=1, keepdims=True), 1)
    clean = np.where(finite, data, 0.0)
    mean = clean.sum(axis=1, keepdims=True) / count
    var = (np.where(finite, clean - mean, 0.0) ** 2).sum(axis=1, keepdims=True) / count
    return mean.astype(np.float32), np.sqrt(var).astype(np.float32)


class SignalPanel(pg.PlotWidget):
    """Stacked traces of the selected channels over the last seconds, newest at the right."""

    def __init__(self, buffer: SignalBuffer, max_points: int = 500) -> None:
        super().__init__(background="w")
        self.buffer = buffer
        self.max_points = max_points
        self.scale_mode = "global"
        self.span_uv = 100.0
        self.selected: tuple[str, ...] | None = None
        self.flags: dict[str, str] = {}
        self.setLabel("bottom", "time (s)")
        self.setMouseEnabled(x=False, y=True)
        self.disableAutoRange()  # ranges are set from the buffer; bounds of 100k points cost
        self.hideButtons()
        self.signal_curve = self.plot(pen=SIGNAL_PEN, connect="finite")
        self.reconstruction_curve = self.plot(pen=RECONSTRUCTION_PEN, connect="finite")
        self.flagged_curve = self.plot(pen=FLAGGED_PEN, connect="finite")
        self._marker_lines: list[pg.InfiniteLine] = []
        self._x_cache: tuple[tuple[int, int], np.ndarray] | None = None
        self._ticks_key: tuple | None = None
        self._x_range: tuple[float, float] | None = None

    def shown_channels(self) -> list[int]:
        """Indices into the buffer's channels of the channels the user selected."""
        if self.selected is None:
            return list(range(len(self.buffer.channels)))
        wanted = set(self.selected)
        return [k for k, name in enumerate(self.buffer.channels) if name in wanted]

    def _stack(self, data: np.ndarray, centre: np.ndarray, gain: np.ndarray) -> np.ndarray:
        """Scale, offset and NaN-separate (C, P) traces into one flat curve array."""
        n = data.shape[0]
        offsets = np.arange(n - 1, -1, -1, dtype=np.float32)[:, None]
        stacked = np.full((n, data.shape[1] + 1), np.nan, dtype=np.float32)
        stacked[:, :-1] = (data - centre) * gain + offsets
        return stacked.reshape(-1)

    def _x(self, times: np.ndarray, n_channels: int) -> np.ndarray:
        key = (n_channels, times.size)
        if self._x_cache is None or self._x_cache[0] != key:
            row = np.append(times, np.nan).astype(np.float32)
            self._x_cache = (key, np.tile(row, n_channels))
        return self._x_cache[1]

    def redraw(self, overlay: bool) -> None:
        """Draw the buffer's current contents with the current selection and scaling."""
        shown = self.shown_channels()
        times, data = peak_decimate(self.buffer.times(), self.buffer.signal[shown], self.max_points)
        if data.shape[0] == 0:
            for curve in (self.signal_curve, self.reconstruction_curve, self.flagged_curve):
                curve.setData([], [])
            return
        if self.scale_mode == "per channel":
            centre, spread = _finite_mean_std(data)
            gain = 1.0 / np.where(spread > 0, 6.0 * spread, 1.0)
        else:
            centre = np.zeros((data.shape[0], 1), dtype=np.float32)
            gain = np.full((data.shape[0], 1), 1.0 / self.span_uv, dtype=np.float32)
        x = self._x(times, data.shape[0])
        y = self._stack(data, centre, gain)
        self.signal_curve.setData(x, y, connect="finite")
        self.reconstruction_curve.setVisible(overlay)
        if overlay:
            _, recon = peak_decimate(
                self.buffer.times(), self.buffer.reconstruction[shown], self.max_points
            )
            self.reconstruction_curve.setData(x, self._stack(recon, centre, gain), connect="finite")
        names = [self.buffer.channels[k] for k in shown]
        flagged = np.array([self.flags.get(name) is not None for name in names])
        y_flag = y.reshape(len(names), -1)[flagged].reshape(-1)
        self.flagged_curve.setData(x[: y_flag.size], y_flag, connect="finite")
        self._draw_ticks(names)
        self._draw_markers()
        if self._x_range != (float(times[0]), 0.0):
            self._x_range = (float(times[0]), 0.0)
            self.setXRange(*self._x_range, padding=0)

    def _draw_ticks(self, names: list[str]) -> None:
        key = (tuple(names), tuple(sorted(self.flags.items())))
        if key == self._ticks_key:
            return
        self._ticks_key = key
        n = len(names)
        ticks = [
            (float(n - 1 - k), f"{name} [{self.flags[name]}]" if name in self.flags else name)
            for k, name in enumerate(names)
        ]
        self.getAxis("left").setTicks([ticks])
        self.setYRange(-1.0, float(n), padding=0)

    def _draw_markers(self) -> None:
        markers = self.buffer.markers()
        while len(self._marker_lines) < len(markers):
            line = pg.InfiniteLine(
                angle=90, pen=MARKER_PEN, label="", labelOpts={"position": 0.97, "color": "b"}
            )
            self.addItem(line)
            self._marker_lines.append(line)
        for k, (line, (t, label)) in enumerate(zip(self._marker_lines, markers, strict=False)):
            line.setPos(t)
            line.label.setPosition(0.98 - 0.025 * (k % 3))  # stagger close labels
            line.label.setFormat(label)
            line.setVisible(True)
        for line in self._marker_lines[len(markers) :]:
            line.setVisible(False)

    def visible_markers(self) -> list[tuple[float, str]]:
        """The marker lines currently drawn, as (x position, label)."""
        return [(ln.value(), ln.label.format) for ln in self._marker_lines if ln.isVisible()]
