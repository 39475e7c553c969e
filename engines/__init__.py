"""NeuroRVQ networks in PyTorch: checkpoints, inference front ends, ONNX export.

``engines`` knows nothing about LSL; it can be used alone in a notebook::

    from engines import load_tokenizer, load_classifier
    tok = load_tokenizer("NeuroRVQ_EEG_tokenizer_v1.pt")
    tokens = tok.tokenize(x, channels)          # int64 [4, 8, B, C*A]
    clf = load_classifier("finetuned.safetensors")
    probs = clf.probabilities(x, channels)

ONNX export of the tokenize / decode / classify graphs: :mod:`engines.onnx_export`.
"""

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
    SHIPPED_MODELS,
    CheckpointError,
    build_foundation_model,
    build_tokenizer,
    foundation_config,
    read_sidecar,
    read_state_dict,
    save_checkpoint,
    shipped_model,
    sidecar_path,
    tokenizer_config,
)
from ._config import NeuroRVQConfig
from ._electrodes import ELECTRODES, electrode_indices
from ._foundation import NeuroRVQFoundationModel
from ._layers import Attention, Backbone, Block, Mlp, MultiScalePatchEmbed
from ._tokenizer import (
    Codebook,
    NeuroRVQTokenizer,
    ResidualQuantizer,
    TokenizerDecoder,
    TokenizerEncoder,
    window_standardize,
)

__all__ = [
    "ELECTRODES",
    "SHIPPED_MODELS",
    "Attention",
    "Backbone",
    "Block",
    "CheckpointError",
    "Classifier",
    "Codebook",
    "Mlp",
    "MultiScalePatchEmbed",
    "NeuroRVQConfig",
    "NeuroRVQFoundationModel",
    "NeuroRVQTokenizer",
    "PreparedWindow",
    "ResidualQuantizer",
    "Tokenizer",
    "TokenizerDecoder",
    "TokenizerEncoder",
    "build_foundation_model",
    "build_tokenizer",
    "electrode_indices",
    "foundation_config",
    "load_classifier",
    "load_tokenizer",
    "logits_to_probabilities",
    "patch_indices",
    "prepare_window",
    "read_sidecar",
    "read_state_dict",
    "save_checkpoint",
    "shipped_model",
    "sidecar_path",
    "tokenizer_config",
    "window_standardize",
]
