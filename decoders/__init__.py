"""Decoders of live EEG windows: what a classifier file holds and how the pipeline runs it.

    from neurorvq_stream.decoders import load_decoder
    decoder = load_decoder("my_calibration.skops")     # or a NeuroRVQ head .safetensors
    decoder.spec          # the window and preprocessing it must be given (WindowSpec)
    decoder.warmup()
    p = decoder.predict_proba(window)                   # (C, n_patches*200) uV -> (K,)
    session = decoder.adapter()                         # re-centred on this session
    p = session.predict_proba(window)                   # (causal, label-free)
    expected_calibration_error(probabilities, truth)    # and the other _metrics

Layer: above ``engines``, below ``streamer``; it imports neither ``streamer`` nor
``training`` (fitting the NeuroRVQ heads and cross-validating lives in ``training``).
"""

if __name__ != "neurorvq_stream.decoders":  # by its folder name it would be a second copy
    raise ImportError(f"Import neurorvq_stream.decoders, not the folder {__name__!r}: the folders "
                      "are parts of one package (pip install -e . installs it).")

from ._adaptation import WARMUP_WINDOWS, SessionAdapter
from ._calibrated import (
    CalibratedModel,
    TemperatureScaling,
    calibration_summary,
    decision_scores,
    fit_calibrator,
)
from ._decoders import HeadDecoder, SklearnDecoder
from ._features import FoundationFeatures
from ._kinds import CLASSICAL_KINDS, HEAD_KINDS, KINDS, DecoderKind
from ._metrics import (
    CalibrationReport,
    Coverage,
    ReliabilityBins,
    accuracy_at_coverage,
    balanced_accuracy,
    calibration_report,
    expected_calibration_error,
    mean_confidence,
    negative_log_likelihood,
    reliability_bins,
)
from ._persistence import (
    ALLOWED_TYPES,
    add_typicality_gate,
    annotate_head,
    decoder_metadata,
    default_decoder,
    load_decoder,
    save_sklearn_decoder,
)
from ._protocol import Decoder, DecoderError
from ._spec import SpecError, WindowSpec
from ._trials import REJECTED, UNDECIDED, ScoredTrial, TrialScorer, decide
from ._typicality import TypicalityGate

__all__ = [
    "ALLOWED_TYPES",
    "CLASSICAL_KINDS",
    "HEAD_KINDS",
    "KINDS",
    "REJECTED",
    "UNDECIDED",
    "WARMUP_WINDOWS",
    "CalibratedModel",
    "CalibrationReport",
    "Coverage",
    "Decoder",
    "DecoderError",
    "DecoderKind",
    "FoundationFeatures",
    "HeadDecoder",
    "ReliabilityBins",
    "ScoredTrial",
    "SessionAdapter",
    "SklearnDecoder",
    "SpecError",
    "TemperatureScaling",
    "TrialScorer",
    "TypicalityGate",
    "WindowSpec",
    "accuracy_at_coverage",
    "add_typicality_gate",
    "annotate_head",
    "balanced_accuracy",
    "calibration_report",
    "calibration_summary",
    "decide",
    "decision_scores",
    "decoder_metadata",
    "default_decoder",
    "expected_calibration_error",
    "fit_calibrator",
    "load_decoder",
    "mean_confidence",
    "negative_log_likelihood",
    "reliability_bins",
    "save_sklearn_decoder",
]
