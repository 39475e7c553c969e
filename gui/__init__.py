"""Live Qt display of the pipeline's results (signals, tokens, predictions, status).

The display only reads: it takes published results from a ``streamer.ResultHub``.
``run_display`` opens it (or renders offscreen for ``save_screenshot``).
"""

from ._app import run_display, save_screenshot
from ._window import MainWindow

__all__ = ["MainWindow", "run_display", "save_screenshot"]
