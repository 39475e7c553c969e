from ._api import Classifier, Tokenizer, load_classifier, load_tokenizer
from ._checkpoint import CheckpointError, shipped_model
from ._config import NeuroRVQConfig
from ._format import ELECTRODES, MODEL_RATE
from ._spec import Preprocessing, Window

__all__ = [
    "ELECTRODES",
    "MODEL_RATE",
    "CheckpointError",
    "Classifier",
    "NeuroRVQConfig",
    "Preprocessing",
    "Tokenizer",
    "Window",
    "load_classifier",
    "load_tokenizer",
    "shipped_model",
]
