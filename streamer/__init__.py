"""Live EEG path: LSL in -> ring buffer -> preprocessing -> windows -> engines -> LSL out.

    from neurorvq_stream.streamer import Pipeline, RunConfig
    with Pipeline(RunConfig.from_file("my_run.yaml")) as pipeline:
        ...  # results on pipeline.hub and on the LSL outlets

``Player`` replays a recording as live LSL streams. The offline helpers that training uses
to compute exactly what the live path computes (``Preprocessor``, ``map_channels``,
``MarkerLockedWindows``) are public too. Names load on first use (the list is
``__init__.pyi``), so the command line's ``list`` reaches the LSL helpers without
importing the signal-processing stack.
"""

import lazy_loader as _lazy

__getattr__, __dir__, __all__ = _lazy.attach_stub(__name__, __file__)
