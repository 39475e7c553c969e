"""Live Qt display of the pipeline's results (signals, tokens, predictions, status)."""

from gui._app import image_rgb, run_display, save_screenshot, widget_pixels
from gui._models import PredictionHistory, SignalBuffer, TokenUsage, class_probabilities
from gui._signals import peak_decimate
from gui._tokens import ALL_LEVELS, token_image
from gui._window import MainWindow

__all__ = [
    "ALL_LEVELS",
    "MainWindow",
    "PredictionHistory",
    "SignalBuffer",
    "TokenUsage",
    "class_probabilities",
    "image_rgb",
    "peak_decimate",
    "run_display",
    "save_screenshot",
    "token_image",
    "widget_pixels",
]
