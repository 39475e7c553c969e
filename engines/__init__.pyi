from ._api import (
    Classifier,
    PreparedWindow,
    Tokenizer,
    load_classifier,
    load_tokenizer,
    logits_to_probabilities,
    patch_indices,
    prepare_window,
)
from ._checkpoint import (
    CheckpointError,
    build_foundation_model,
    build_tokenizer,
    read_sidecar,
    save_checkpoint,
    shipped_model,
    shipped_models_dir,
)
from ._config import NeuroRVQConfig
from ._format import ELECTRODES, MODEL_RATE, PATCH_SAMPLES, electrode_indices
from ._foundation import NeuroRVQFoundationModel
from ._spec import Preprocessing
from ._tokenizer import NeuroRVQTokenizer, ResidualQuantizer, window_standardize

__all__ = [
    "ELECTRODES",
    "MODEL_RATE",
    "PATCH_SAMPLES",
    "CheckpointError",
    "Classifier",
    "NeuroRVQConfig",
    "NeuroRVQFoundationModel",
    "NeuroRVQTokenizer",
    "PreparedWindow",
    "Preprocessing",
    "ResidualQuantizer",
    "Tokenizer",
    "build_foundation_model",
    "build_tokenizer",
    "electrode_indices",
    "load_classifier",
    "load_tokenizer",
    "logits_to_probabilities",
    "patch_indices",
    "prepare_window",
    "read_sidecar",
    "save_checkpoint",
    "shipped_model",
    "shipped_models_dir",
    "window_standardize",
]
