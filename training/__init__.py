"""Training, evaluation and calibration of NeuroRVQ models on real EEG.

Offline data goes through the live pipeline's own preprocessing, channel mapping and
window cutting (``_data``), so what is trained here is what runs online. Entry points:
``python -m neurorvq_stream.training.train_defaults`` (the shipped models),
``python -m neurorvq_stream.training.evaluate`` (the results table) and
``neurorvq-stream calibrate`` (a head from live or recorded labelled epochs).
"""

if __name__ != "neurorvq_stream.training":  # by its folder name it would be a second copy
    raise ImportError(f"Import neurorvq_stream.training, not the folder {__name__!r}: the folders "
                      "are parts of one package (pip install -e . installs it).")

from ._checkpointing import ResumeError, default_work_dir
from ._data import (
    CHECKER_CLASSES,
    PreprocessedRecording,
    continuous_windows,
    load_preprocessed,
    marker_epochs,
    preprocess_recording,
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
    "PreprocessedRecording",
    "PretrainConfig",
    "ResumeError",
    "Session",
    "TokenizerTrainConfig",
    "continuous_windows",
    "default_work_dir",
    "evaluate_tokenizer",
    "finetune",
    "load_preprocessed",
    "marker_epochs",
    "new_foundation_model",
    "new_tokenizer",
    "predict_proba",
    "preprocess_recording",
    "pretrain_foundation_model",
    "train_tokenizer",
]
