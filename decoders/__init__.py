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

from neurorvq_stream._folders import refuse_folder_name

refuse_folder_name(__name__)

from ._adaptation import SessionAdapter
from ._kinds import KINDS
from ._metrics import (
    accuracy_at_coverage,
    calibration_report,
    expected_calibration_error,
    reliability_bins,
)
from ._persistence import default_decoder, load_decoder
from ._protocol import Decoder, DecoderError
from ._spec import WindowSpec
from ._trials import REJECTED, UNDECIDED, TrialScorer

__all__ = [
    "KINDS",
    "REJECTED",
    "UNDECIDED",
    "Decoder",
    "DecoderError",
    "SessionAdapter",
    "TrialScorer",
    "WindowSpec",
    "accuracy_at_coverage",
    "calibration_report",
    "default_decoder",
    "expected_calibration_error",
    "load_decoder",
    "reliability_bins",
]
