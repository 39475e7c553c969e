"""The predictions panel: class probabilities over time, newest as bars, replay accuracy."""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from pyqtgraph.Qt import QtWidgets

from ._models import PredictionHistory

CLASS_COLORS = [
    (31, 119, 180),
    (255, 127, 14),
    (44, 160, 44),
    (214, 39, 40),
    (148, 103, 189),
    (140, 86, 75),
    (227, 119, 194),
    (127, 127, 127),
    (188, 189, 34),
    (23, 190, 207),
]


def class_color(k: int) -> tuple[int, int, int]:
    """A stable color per class index, shared by lines and bars so they read together."""
    return CLASS_COLORS[k % len(CLASS_COLORS)]


class PredictionPanel(QtWidgets.QWidget):
    """Probability lines over the kept history, bars for the newest window, accuracy text."""

    def __init__(self, history: PredictionHistory, span_s: float = 60.0) -> None:
        super().__init__()
        self.history = history
        layout = QtWidgets.QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        self.lines_plot = pg.PlotWidget(background="w", title="class probabilities")
        self.lines_plot.hideButtons()
        self.lines_plot.disableAutoRange()  # fixed axes: nothing to re-layout per frame
        self.lines_plot.setRange(xRange=(-span_s, 0), yRange=(0, 1), padding=0.02)
        self.lines_plot.setLabel("bottom", "time (s)")
        self.legend = self.lines_plot.addLegend(offset=(5, 5))
        self.bars_plot = pg.PlotWidget(background="w", title="newest window")
        self.bars_plot.hideButtons()
        self.bars_plot.disableAutoRange()
        self.bars_plot.setYRange(0, 1, padding=0.02)
        self.bars = pg.BarGraphItem(x=[], height=[], width=0.7)
        self.bars_plot.addItem(self.bars)
        self.accuracy_label = QtWidgets.QLabel("accuracy: no labelled windows")
        layout.addWidget(self.lines_plot, 3)
        layout.addWidget(self.bars_plot, 2)
        layout.addWidget(self.accuracy_label)
        self.lines: list[pg.PlotDataItem] = []
        self._names: tuple[str, ...] = ()

    def _set_classes(self, names: tuple[str, ...]) -> None:
        for line in self.lines:
            self.lines_plot.removeItem(line)
        self.legend.clear()
        self.lines = [
            self.lines_plot.plot(pen=pg.mkPen(class_color(k), width=2), name=name)
            for k, name in enumerate(names)
        ]
        self.bars_plot.getAxis("bottom").setTicks([list(enumerate(names))])
        self.bars_plot.setXRange(-0.5, len(names) - 0.5, padding=0)
        self._names = names

    def redraw(self) -> None:
        """Draw the history kept by the ``PredictionHistory``."""
        if not self.history.probabilities:
            return
        if self.history.class_names != self._names:
            self._set_classes(self.history.class_names)
        times = np.asarray(self.history.times) - self.history.times[-1]
        probs = np.stack(self.history.probabilities)
        for k, line in enumerate(self.lines):
            line.setData(times, probs[:, k])
        newest = probs[-1]
        self.bars.setOpts(
            x=np.arange(newest.size),
            height=newest,
            brushes=[pg.mkBrush(class_color(k)) for k in range(newest.size)],
        )
        accuracy = self.history.balanced_accuracy()
        if accuracy is not None:
            self.accuracy_label.setText(
                f"balanced accuracy: {accuracy:.2f} over {self.history.n_labelled()} "
                f"decided trials (coverage {self.history.scorer.coverage():.2f}, chance "
                f"{1 / len(self._names):.2f})"
            )

    def bar_heights(self) -> np.ndarray:
        """Heights of the drawn bars (the newest window's probabilities)."""
        return np.asarray(self.bars.opts["height"], dtype=np.float64)
