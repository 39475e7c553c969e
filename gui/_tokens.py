"""The token panel: the newest window's codes as an image, and codebook usage over minutes.

Tokens arrive channel-major (token k = channel k // A, patch k % A), so one (branch,
level) row reshapes straight into a channels x patches image; "all" puts the 32
(branch, level) images side by side, branch-major.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from pyqtgraph.Qt import QtWidgets

from ._models import TokenUsage

ALL_LEVELS = -1


def token_image(tokens: np.ndarray, n_channels: int, branch: int, level: int) -> np.ndarray:
    """Channels x patches image of one (branch, level), or of all of them side by side.

    ``branch`` or ``level`` equal to ``ALL_LEVELS`` selects every branch / level.
    """
    tokens = np.asarray(tokens)
    n_branches, n_levels, n_tokens = tokens.shape
    if n_channels <= 0 or n_tokens % n_channels:
        raise ValueError(f"{n_tokens} tokens per level cannot be split into {n_channels} channels.")
    n_patches = n_tokens // n_channels
    branches = range(n_branches) if branch == ALL_LEVELS else [branch]
    levels = range(n_levels) if level == ALL_LEVELS else [level]
    for name, value, count in (("branch", branch, n_branches), ("level", level, n_levels)):
        if value != ALL_LEVELS and not 0 <= value < count:
            raise ValueError(f"The {name} {value} is out of range: tokens have {count}.")
    blocks = [tokens[b, lv].reshape(n_channels, n_patches) for b in branches for lv in levels]
    return np.concatenate(blocks, axis=1)


class TokenPanel(QtWidgets.QWidget):
    """Token image of the newest window above distinct-code counts per (branch, level)."""

    def __init__(self, usage: TokenUsage) -> None:
        super().__init__()
        self.usage = usage
        self.branch = 0
        self.level = 0
        self.max_code = 0
        self._image_shape: tuple[int, ...] = ()
        layout = QtWidgets.QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        self.image_plot = pg.PlotWidget(background="w", title="tokens (channels x patches)")
        self.image_plot.invertY(True)
        self.image_plot.hideButtons()
        self.image_plot.disableAutoRange()
        self.image_plot.setLabel("left", "channel")
        self.image_plot.setLabel("bottom", "patch")
        self.image_item = pg.ImageItem(axisOrder="row-major")
        self.image_item.setColorMap(pg.colormap.get("viridis"))
        self.image_plot.addItem(self.image_item)
        self.usage_plot = pg.PlotWidget(background="w", title="distinct codes per level")
        self.usage_plot.hideButtons()
        self.usage_plot.setLabel("bottom", "branch x 8 + level")
        self.usage_plot.disableAutoRange()
        self._usage_top = 0
        self.usage_bars = pg.BarGraphItem(x=[], height=[], width=0.8, brush=(60, 120, 200))
        self.usage_plot.addItem(self.usage_bars)
        layout.addWidget(self.image_plot, 3)
        layout.addWidget(self.usage_plot, 2)

    def redraw(self, tokens: np.ndarray | None, n_channels: int) -> None:
        """Show ``tokens`` (branches, levels, C*A) of the newest window and the usage counts."""
        if tokens is not None:
            image = token_image(tokens, n_channels, self.branch, self.level)
            self.max_code = max(self.max_code, int(image.max()))
            self.image_item.setImage(
                image.astype(np.float32), levels=(0.0, float(max(self.max_code, 1)))
            )
            if image.shape != self._image_shape:
                self._image_shape = image.shape
                self.image_plot.setRange(
                    xRange=(0, image.shape[1]), yRange=(0, image.shape[0]), padding=0
                )
        counts = self.usage.distinct_counts()
        brushes = [
            pg.mkBrush(200, 80, 40)
            if self.branch in (ALL_LEVELS, k // 8) and self.level in (ALL_LEVELS, k % 8)
            else pg.mkBrush(60, 120, 200)
            for k in range(counts.size)
        ]
        self.usage_bars.setOpts(x=np.arange(counts.size), height=counts, brushes=brushes)
        top = 1 << int(max(int(counts.max(initial=1)), 1) - 1).bit_length()  # next power of 2
        if top != self._usage_top:  # rescale rarely so the axes stay put
            self._usage_top = top
            self.usage_plot.setRange(xRange=(-0.5, counts.size - 0.5), yRange=(0, top), padding=0)
