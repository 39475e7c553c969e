"""Running the display: a QApplication around ``MainWindow``, and PNG screenshots.

``neurorvq-stream demo --screenshot FILE --duration S`` runs the pipeline, opens this
display (offscreen where there is no screen), and after S seconds saves the window.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
from pyqtgraph.Qt import QtCore, QtGui, QtWidgets

from neurorvq_stream.streamer import PipelineStatus, ResultHub

from ._window import MainWindow


def image_rgb(image: QtGui.QImage) -> np.ndarray:
    """(height, width, 3) uint8 copy of ``image``, to check a screenshot by its pixels."""
    rgb = image.convertToFormat(QtGui.QImage.Format.Format_RGB888)
    rows = np.frombuffer(rgb.constBits(), np.uint8).reshape(rgb.height(), rgb.bytesPerLine())
    # copy: the buffer belongs to the QImage and is freed with it
    return rows[:, : 3 * rgb.width()].reshape(rgb.height(), rgb.width(), 3).copy()


def widget_pixels(window: QtWidgets.QWidget, widget: QtWidgets.QWidget, png: Path) -> np.ndarray:
    """The part of a saved screenshot ``png`` of ``window`` where ``widget`` is drawn."""
    pixels = image_rgb(QtGui.QImage(str(png)))
    ratio = pixels.shape[1] / window.width()  # device pixel ratio of the grab
    corner = widget.mapTo(window, widget.rect().topLeft())
    x0, y0 = round(corner.x() * ratio), round(corner.y() * ratio)
    return pixels[y0 : y0 + round(widget.height() * ratio), x0 : x0 + round(widget.width() * ratio)]


def _png_path(path: str | Path) -> Path:
    """``path`` as a Path, refused early if a PNG cannot be written there."""
    path = Path(path)
    if path.suffix.lower() != ".png":
        raise ValueError(f"Screenshots are saved as PNG; '{path}' does not end in .png.")
    if not path.parent.is_dir():
        raise FileNotFoundError(f"Cannot save the screenshot: folder '{path.parent}' is missing.")
    return path


def save_screenshot(window: QtWidgets.QWidget, path: str | Path) -> Path:
    """Render ``window`` (even offscreen) and write it as a PNG to ``path``."""
    path = _png_path(path)
    if not window.grab().save(str(path), "PNG"):
        raise OSError(f"Qt could not write the screenshot to '{path}'.")
    return path


def run_display(
    hub: ResultHub,
    status_source: Callable[[], PipelineStatus] | None = None,
    duration_s: float | None = None,
    screenshot: str | Path | None = None,
) -> int:
    """Show the live display until it is closed, or for ``duration_s`` seconds.

    With ``screenshot`` the window is saved there when ``duration_s`` elapses, which is
    how the README's picture is made. Returns the Qt event loop's exit code.
    """
    if screenshot is not None and duration_s is None:
        raise ValueError("A screenshot is taken when the duration ends: also pass duration_s.")
    if duration_s is not None and duration_s <= 0:
        raise ValueError(f"duration_s must be positive, got {duration_s}.")
    if screenshot is not None:
        screenshot = _png_path(screenshot)  # fail now, not after the whole run
    app = QtWidgets.QApplication.instance()
    if app is None:
        if screenshot is not None and not (
            os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")
        ):
            # a screenshot needs no screen: render offscreen instead of failing to connect
            os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
        app = QtWidgets.QApplication([])
    window = MainWindow(hub, status_source)
    window.show()
    window.start()

    errors: list[Exception] = []

    def finish() -> None:
        try:
            window.refresh()
            if screenshot is not None:
                save_screenshot(window, screenshot)
        except Exception as err:  # re-raised below: an exception in a Qt slot would hang exec()
            errors.append(err)
        finally:
            window.close()
            app.quit()

    if duration_s is not None:
        QtCore.QTimer.singleShot(round(duration_s * 1000), finish)
    code = app.exec()
    window.timer.stop()
    if errors:
        raise errors[0]
    return int(code)
