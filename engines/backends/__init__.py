"""Interchangeable inference backends behind one interface (PyTorch, ONNX Runtime, TensorRT).

    from neurorvq_stream.engines.backends import create_engine
    engine = create_engine("tokenizer.pt", "classifier.safetensors", backend="auto")
    engine.warmup(channels, n_patches=4)
    out = engine.run(x, channels)     # EngineOutput: tokens, reconstruction, probabilities
    print(engine.describe())          # which backend, and why it was picked

Exported graphs and compiled engines are cached per user (``$NEURORVQ_CACHE_DIR`` moves
the cache); ``compile_engines`` and ``export_graphs`` build them ahead of a run
(``build_engine.py``). Names load on first use (the list is
``__init__.pyi``), so reading ``BACKENDS`` costs no torch import.
"""

import lazy_loader as _lazy

__getattr__, __dir__, __all__ = _lazy.attach_stub(__name__, __file__)
