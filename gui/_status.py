"""The status panel: what is streaming, how it is mapped, how late and how healthy it is."""

from __future__ import annotations

import html
from collections import deque

import numpy as np
import pyqtgraph as pg
from pyqtgraph.Qt import QtWidgets

from neurorvq_stream.streamer import PipelineStatus, WindowResult

from ._predictions import class_color

HEALTH_COLORS = {"streaming": "#2a8a2a", "starting": "#a07000"}


class StatusPanel(QtWidgets.QWidget):
    """Stream, mapping, engine and counters as text; per-stage latency as sparklines."""

    def __init__(self, latency_windows: int = 120) -> None:
        super().__init__()
        self.latencies: deque[dict[str, float]] = deque(maxlen=latency_windows)
        layout = QtWidgets.QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        self.summary = QtWidgets.QLabel()
        self.summary.setWordWrap(True)
        self.mapping_view = QtWidgets.QPlainTextEdit()
        self.mapping_view.setReadOnly(True)
        self.mapping_view.setMaximumHeight(48)
        self.latency_plot = pg.PlotWidget(background="w", title="latency per stage (ms)")
        self.latency_plot.hideButtons()
        self.latency_plot.setLabel("bottom", "window")
        self.latency_plot.setXRange(0, latency_windows - 1, padding=0)
        self.latency_plot.enableAutoRange(x=False, y=True)
        self.latency_legend = self.latency_plot.addLegend(offset=(5, 5))
        layout.addWidget(self.summary)
        layout.addWidget(self.mapping_view)
        layout.addWidget(self.latency_plot, 1)
        self.latency_curves: dict[str, pg.PlotDataItem] = {}
        self._mapping: tuple[tuple[str, str], ...] | None = None

    def add_result(self, result: WindowResult) -> None:
        """Keep the window's per-stage latencies (milliseconds, as the runner and the metrics
        outlet report them) for the sparklines."""
        if result.latency:
            self.latencies.append(dict(result.latency))

    def redraw(self, status: PipelineStatus) -> None:
        """Show ``status`` and the kept latencies."""
        state = html.escape(status.health)
        # engine descriptions run to several lines (why each backend was chosen): first
        # clause of each model's part here, the whole text as the tooltip
        short_engine = " | ".join(part.split(",")[0].strip() for part in status.engine.split("|"))
        self.summary.setToolTip(status.engine)
        color = HEALTH_COLORS.get(status.health, "#c00000")
        flagged = ", ".join(f"{n} {name}" for name, n in status.flag_counts if n)
        estimate = status.inference.estimated_accuracy
        alarms = [f"<b>failed:</b> {html.escape(text)}" for text in status.failed]
        alarms += [f"<b>warning:</b> {html.escape(text)}" for text in status.stream_warnings]
        if status.last_error and not status.failed:
            alarms.append(f"<b>last error:</b> {html.escape(status.last_error)}")
        self.summary.setText(
            f"<b>{html.escape(status.stream_name) or '(no stream)'}</b> "
            f"{status.source_rate:g} Hz, {status.n_source_channels} channels, "
            f"{len(status.mapping)} mapped &nbsp; engine: <b>{html.escape(short_engine)}</b><br>"
            f"stream: <b style='color:{color}'>{state}</b> &nbsp; gaps {status.gaps} &nbsp; "
            f"stalls {status.stalls} &nbsp; samples lost {status.samples_lost} / "
            f"{status.samples_received}<br>"
            f"windows {status.windows_done} &nbsp; dropped {status.windows_dropped} &nbsp; "
            f"rejected {status.windows_rejected} &nbsp; deadline misses "
            f"{status.deadline_misses} &nbsp; errors {status.inference_errors} &nbsp; queue "
            f"{status.queue_depth}" + (f"<br>flagged channels: {flagged}" if flagged else "")
            + (f"<br>estimated accuracy on this session: {estimate:.2f}"
               if not np.isnan(estimate) else "")
            + "".join(f"<br>{text}" for text in alarms)
        )
        if status.mapping != self._mapping:
            self._mapping = status.mapping
            self.mapping_view.setPlainText(
                ", ".join(f"{source}\u2192{target}" for source, target in status.mapping)
            )
        self._draw_latencies()

    def _draw_latencies(self) -> None:
        stages = sorted({stage for entry in self.latencies for stage in entry})
        for k, stage in enumerate(stages):
            if stage not in self.latency_curves:
                self.latency_curves[stage] = self.latency_plot.plot(
                    pen=pg.mkPen(class_color(k), width=1.5), name=stage
                )
            values = np.array([entry.get(stage, np.nan) for entry in self.latencies])
            self.latency_curves[stage].setData(np.arange(values.size), values, connect="finite")
