"""Live EEG path: LSL in -> ring buffer -> preprocessing -> windows -> engines -> LSL out.

    from neurorvq_stream.streamer import Pipeline, RunConfig
    with Pipeline(RunConfig.from_file("my_run.yaml")) as pipeline:
        ...  # results on pipeline.hub and on the LSL outlets

``Player`` replays a recording as live LSL streams, ``Recorder`` records them to XDF, and
``read_decision`` parses the decisions outlet. These are what users call; the stages
training reuses to compute exactly what the live path computes (the preprocessor, the
channel mapping, the window schedulers) are imported from their modules. Names load on
first use (the list is ``__init__.pyi``), so the command line's ``list`` reaches the LSL
helpers without importing the signal-processing stack.
"""

from neurorvq_stream._folders import refuse_folder_name

refuse_folder_name(__name__)

import lazy_loader as _lazy

__getattr__, __dir__, __all__ = _lazy.attach_stub(__name__, __file__)
