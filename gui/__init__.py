"""Live Qt display of the pipeline's results (signals, tokens, predictions, status).

The display only reads: it takes published results from a ``streamer.ResultHub``.
``run_display`` opens it (or renders offscreen for ``save_screenshot``).
"""

if __name__ != "neurorvq_stream.gui":  # by its folder name it would be a second copy
    raise ImportError(f"Import neurorvq_stream.gui, not the folder {__name__!r}: the folders "
                      "are parts of one package (pip install -e . installs it).")

from ._app import run_display
from ._window import MainWindow

__all__ = [
    "MainWindow",
    "run_display",
]
