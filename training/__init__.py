"""Training, evaluation and calibration of NeuroRVQ models on real EEG.

Offline data goes through the live pipeline's own preprocessing, channel mapping and
window cutting (``_data``), so what is trained here is what runs online. Entry points:
``python -m neurorvq_stream.training.train_defaults`` (the shipped models),
``python -m neurorvq_stream.training.evaluate`` (the results table) and
``neurorvq-stream calibrate`` (a head from live or recorded labelled epochs).
"""

from neurorvq_stream._folders import refuse_folder_name

refuse_folder_name(__name__)

from ._data import PreprocessedRecording, load_preprocessed, marker_epochs, preprocess_recording

__all__ = [
    "PreprocessedRecording",
    "load_preprocessed",
    "marker_epochs",
    "preprocess_recording",
]
