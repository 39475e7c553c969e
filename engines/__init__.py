"""NeuroRVQ networks in PyTorch: checkpoints, inference front ends, ONNX export, backends.

``engines`` knows nothing about LSL; it can be used alone in a notebook::

    from neurorvq_stream.engines import load_tokenizer, load_classifier
    tok = load_tokenizer("NeuroRVQ_EEG_tokenizer_v1.pt")
    tokens = tok.tokenize(x, channels)          # int64 [4, 8, B, C*A]
    clf = load_classifier("finetuned.safetensors")
    probs = clf.probabilities(x, channels)

Names load on first use (the list is ``__init__.pyi``): the input-format facts
(``MODEL_RATE``, ``ELECTRODES``) cost no torch import, so the live pipeline and the command
line can read them without paying for the networks. Backends: :mod:`.backends`.
"""

from neurorvq_stream._folders import refuse_folder_name

refuse_folder_name(__name__)

import lazy_loader as _lazy

__getattr__, __dir__, __all__ = _lazy.attach_stub(__name__, __file__)
