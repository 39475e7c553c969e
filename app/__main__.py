"""``python -m neurorvq_stream``: the same command line as ``neurorvq-stream``."""

import sys

from neurorvq_stream.cli import main

sys.exit(main())
