"""Live Qt display of the pipeline's results (signals, tokens, predictions, status).

The display only reads: it takes published results from a ``streamer.ResultHub``.
``run_display`` opens it (or renders offscreen for ``save_screenshot``).
"""

from neurorvq_stream._folders import refuse_folder_name

refuse_folder_name(__name__)

from ._app import run_display
from ._window import MainWindow

__all__ = [
    "MainWindow",
    "run_display",
]
