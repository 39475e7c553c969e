"""The main window: panels and controls, refreshed from a ``ResultHub`` on a Qt timer.

The display only reads. All its work happens on the Qt thread, in ``refresh``: it takes
the results published since the last frame (never blocking the pipeline, which only
holds the hub's lock to append), folds them into its models and draws once. QTimer does
not queue missed ticks, so a slow frame skips frames instead of piling them up.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from pyqtgraph.Qt import QtCore, QtWidgets

from neurorvq_stream.streamer import PipelineStatus, ResultHub, WindowResult

from ._models import PredictionHistory, SignalBuffer, TokenUsage
from ._predictions import PredictionPanel
from ._signals import SignalPanel
from ._status import StatusPanel
from ._tokens import TokenPanel


class MainWindow(QtWidgets.QMainWindow):
    """Signals, tokens, predictions and status of a running pipeline, with controls.

    ``status_source`` defaults to ``hub.status``; pass another callable where the
    counters live elsewhere. Call ``start()`` to refresh ``refresh_hz`` times a second,
    or ``refresh()`` yourself (tests, benchmarks).
    """

    def __init__(
        self,
        hub: ResultHub,
        status_source: Callable[[], PipelineStatus] | None = None,
        *,
        duration_s: float = 10.0,
        refresh_hz: float = 30.0,
        max_points: int = 500,
    ) -> None:
        super().__init__()
        if refresh_hz <= 0:
            raise ValueError(f"refresh_hz must be positive, got {refresh_hz}.")
        self.hub = hub
        self.status_source = status_source or hub.status
        self.last_index = -1
        self.newest: WindowResult | None = None
        self.paused = False
        self.frames_drawn = 0
        self.last_frame_s = 0.0
        self._dirty = True
        self._status_shown: PipelineStatus | None = None
        self.signal_buffer = SignalBuffer(duration_s)
        self.token_usage = TokenUsage()
        self.prediction_history = PredictionHistory()

        self.setWindowTitle("NeuroRVQ stream")
        self.signals = SignalPanel(self.signal_buffer, max_points=max_points)
        self.tokens = TokenPanel(self.token_usage)
        self.predictions = PredictionPanel(self.prediction_history)
        self.status = StatusPanel()
        self._build_layout()
        self._build_controls()
        self.timer = QtCore.QTimer(self)
        self.timer.setInterval(round(1000 / refresh_hz))
        self.timer.timeout.connect(self.refresh)

    def _build_layout(self) -> None:
        self.channel_list = QtWidgets.QListWidget()
        self.channel_list.setMaximumWidth(110)
        self.channel_list.itemChanged.connect(self._on_channels_changed)
        right = QtWidgets.QSplitter(QtCore.Qt.Orientation.Vertical)
        for panel in (self.tokens, self.predictions, self.status):
            right.addWidget(panel)
        main = QtWidgets.QSplitter(QtCore.Qt.Orientation.Horizontal)
        main.addWidget(self.channel_list)
        main.addWidget(self.signals)
        main.addWidget(right)
        main.setSizes([110, 900, 600])
        right.setSizes([300, 290, 330])
        self.setCentralWidget(main)
        self.resize(1600, 950)

    def _build_controls(self) -> None:
        bar = self.addToolBar("controls")
        bar.setMovable(False)
        self.pause_button = QtWidgets.QPushButton("Pause")
        self.pause_button.setCheckable(True)
        self.pause_button.toggled.connect(self.set_paused)
        self.overlay_box = QtWidgets.QCheckBox("reconstruction")
        self.overlay_box.setChecked(True)
        self.overlay_box.toggled.connect(self._mark_dirty)
        self.scale_mode_box = QtWidgets.QComboBox()
        self.scale_mode_box.addItems(["global", "per channel"])
        self.scale_mode_box.currentTextChanged.connect(self._on_scale_changed)
        self.span_box = QtWidgets.QDoubleSpinBox()
        self.span_box.setRange(1.0, 5000.0)
        self.span_box.setValue(self.signals.span_uv)
        self.span_box.setSuffix(" \u00b5V/ch")
        self.span_box.valueChanged.connect(self._on_scale_changed)
        self.branch_box = QtWidgets.QComboBox()
        self.level_box = QtWidgets.QComboBox()
        self._token_layout: tuple[int, int] = (0, 0)
        self._set_token_layout((4, 8))  # NeuroRVQ v1's; the first tokens say the real one
        self.branch_box.currentIndexChanged.connect(self._on_token_choice)
        self.level_box.currentIndexChanged.connect(self._on_token_choice)
        for label, widget in (
            (None, self.pause_button),
            (None, self.overlay_box),
            ("scale", self.scale_mode_box),
            (None, self.span_box),
            ("branch", self.branch_box),
            ("RVQ level", self.level_box),
        ):
            if label:
                bar.addWidget(QtWidgets.QLabel(f" {label} "))
            bar.addWidget(widget)

    # --- controls -------------------------------------------------------------------
    def set_paused(self, paused: bool) -> None:
        """Freeze the drawing (results keep being collected so resuming shows the present)."""
        self.paused = paused
        self.pause_button.setChecked(paused)
        self.pause_button.setText("Resume" if paused else "Pause")
        self._dirty = True

    def set_overlay(self, shown: bool) -> None:
        """Show or hide the reconstruction on top of the signal."""
        self.overlay_box.setChecked(shown)

    def set_scale(self, mode: str, span_uv: float | None = None) -> None:
        """``mode`` 'global' (``span_uv`` microvolts per channel row) or 'per channel'."""
        if mode not in ("global", "per channel"):
            raise ValueError(f"Unknown scale mode '{mode}': use 'global' or 'per channel'.")
        if span_uv is not None:
            self.span_box.setValue(span_uv)
        self.scale_mode_box.setCurrentText(mode)
        self._on_scale_changed()

    def set_token_view(self, branch: int | None, level: int | None) -> None:
        """Branch and RVQ level (from 0) for the token image; None means all of them."""
        for name, value, count in zip(("branch", "level"), (branch, level),
                                      self._token_layout, strict=True):
            if value is not None and not 0 <= value < count:
                raise ValueError(f"The {name} must be None (all) or 0-{count - 1}, got {value}.")
        self.branch_box.setCurrentIndex(0 if branch is None else branch + 1)
        self.level_box.setCurrentIndex(0 if level is None else level + 1)

    def select_channels(self, names: list[str] | None) -> None:
        """Show only ``names`` (None: all channels)."""
        known = set(self.signal_buffer.channels)
        unknown = [n for n in names or [] if n not in known]
        if unknown:
            raise ValueError(
                f"Channels {unknown} are not displayed; the stream has {sorted(known)}."
            )
        wanted = known if names is None else set(names)
        self.channel_list.blockSignals(True)
        for row in range(self.channel_list.count()):
            item = self.channel_list.item(row)
            checked = item.text() in wanted
            item.setCheckState(
                QtCore.Qt.CheckState.Checked if checked else QtCore.Qt.CheckState.Unchecked
            )
        self.channel_list.blockSignals(False)
        self._on_channels_changed()

    def _mark_dirty(self, *_: object) -> None:
        self._dirty = True

    def _on_scale_changed(self, *_: object) -> None:
        self.signals.scale_mode = self.scale_mode_box.currentText()
        self.signals.span_uv = self.span_box.value()
        self.span_box.setEnabled(self.signals.scale_mode == "global")
        self._dirty = True

    def _set_token_layout(self, layout: tuple[int, int]) -> None:
        """Offer the branches and levels the tokenizer has (its checkpoint defines them)."""
        self._token_layout = layout
        for box, count, first in ((self.branch_box, layout[0], 1), (self.level_box, layout[1], 0)):
            box.blockSignals(True)
            box.clear()
            box.addItems(["all", *(str(k + first) for k in range(count))])
            box.setCurrentIndex(1)
            box.blockSignals(False)
        self._on_token_choice()

    def _on_token_choice(self, *_: object) -> None:
        self.tokens.branch = self.branch_box.currentIndex() - 1
        self.tokens.level = self.level_box.currentIndex() - 1
        self._dirty = True

    def _on_channels_changed(self, *_: object) -> None:
        checked = [
            self.channel_list.item(row).text()
            for row in range(self.channel_list.count())
            if self.channel_list.item(row).checkState() == QtCore.Qt.CheckState.Checked
        ]
        self.signals.selected = tuple(checked)
        self._dirty = True

    def _fill_channel_list(self, channels: tuple[str, ...]) -> None:
        self.channel_list.blockSignals(True)
        self.channel_list.clear()
        for name in channels:
            item = QtWidgets.QListWidgetItem(name)
            item.setFlags(item.flags() | QtCore.Qt.ItemFlag.ItemIsUserCheckable)
            item.setCheckState(QtCore.Qt.CheckState.Checked)
            self.channel_list.addItem(item)
        self.channel_list.blockSignals(False)
        self.signals.selected = None

    # --- refresh --------------------------------------------------------------------
    def start(self) -> None:
        """Begin refreshing from the hub on the Qt timer."""
        self.timer.start()

    def ingest(self, results: list[WindowResult]) -> None:
        """Fold new results into the display's models (no drawing)."""
        for result in results:
            if tuple(result.channels) != self.signal_buffer.channels:
                self._fill_channel_list(tuple(result.channels))
            if result.display:  # not a classifier's own (differently cut) window
                self.signal_buffer.add(result)
            if result.tokens is not None:
                if result.tokens.shape[:2] != self._token_layout:
                    self._set_token_layout(result.tokens.shape[:2])
                self.token_usage.add(result.t_last, result.tokens)
            if result.probabilities is not None:
                self.prediction_history.add(result)
            self.status.add_result(result)
            self.last_index = max(self.last_index, result.index)
            self.newest = result
            self._dirty = True

    def refresh(self) -> bool:
        """Take what the hub published since the last call and redraw; True if it drew.

        The status panel follows the pipeline even while paused or between windows, so a
        stalled stream shows as stalled although no new window arrives.
        """
        self.ingest(self.hub.since(self.last_index))
        status = self.status_source()
        draw = self._dirty and not self.paused
        if draw or status != self._status_shown:
            self.status.redraw(status)
            self._status_shown = status
        if not draw:
            return False
        started = time.perf_counter()
        newest = self.newest
        if newest is not None:
            self.signals.flags = {name: ",".join(kinds)
                                  for name, kinds in newest.flagged_channels().items()}
            self.signals.redraw(overlay=self.overlay_box.isChecked())
            self.tokens.redraw(newest.tokens, len(newest.channels))
            self.predictions.redraw()
        self._dirty = False
        self.frames_drawn += 1
        self.last_frame_s = time.perf_counter() - started
        return True
