"""neurorvq-stream: real-time NeuroRVQ tokens, reconstructions and BCI predictions over LSL.

Import layout (one installed package, built from the repository's top-level folders):

- ``neurorvq_stream`` (folder ``app/``): the application layer, the command line and the
  commands that compose the parts (run, play, demo, calibrate, closed loop, report,
  engine building). Nothing below imports it but its folder check (``_folders``).
- ``neurorvq_stream.gui`` (``gui/``) and ``neurorvq_stream.training`` (``training/``):
  the live display (reads results) and model training / calibration (uses the live path
  offline).
- ``neurorvq_stream.streamer`` (``streamer/``): LSL in -> preprocessing -> windows ->
  engines -> LSL out, and the file player.
- ``neurorvq_stream.engines`` (``engines/``): the networks and inference backends; knows
  nothing of LSL.

Importing this package imports only its folder check (``_folders``), so
``neurorvq-stream --help`` stays fast.
"""

from neurorvq_stream._folders import refuse_folder_name

refuse_folder_name(__name__)

__version__ = "0.2.0"
