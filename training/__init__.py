"""Training, evaluation and live calibration of NeuroRVQ models on real EEG.

Offline data goes through the live pipeline's own preprocessing, channel mapping and
window cutting (``_data``), so what is trained here is what runs online.
"""

from ._checkpointing import ResumeError, default_work_dir
from ._data import (
    CHECKER_CLASSES,
    Recording,
    continuous_windows,
    load_recording,
    marker_epochs,
    recording_files,
)
from ._finetune import FinetuneConfig, finetune, predict_proba
from ._loop import Evaluation, Session
from ._pretraining import PretrainConfig, new_foundation_model, pretrain_foundation_model
from ._tokenizer_training import (
    TokenizerTrainConfig,
    evaluate_tokenizer,
    new_tokenizer,
    train_tokenizer,
)

__all__ = [
    "CHECKER_CLASSES",
    "Evaluation",
    "FinetuneConfig",
    "PretrainConfig",
    "Recording",
    "ResumeError",
    "Session",
    "TokenizerTrainConfig",
    "continuous_windows",
    "default_work_dir",
    "evaluate_tokenizer",
    "finetune",
    "load_recording",
    "marker_epochs",
    "new_foundation_model",
    "new_tokenizer",
    "predict_proba",
    "pretrain_foundation_model",
    "recording_files",
    "train_tokenizer",
]
