"""Build inference engines: checkpoint -> ONNX (fp32, fp16) -> TensorRT, cached.

    python build_engine.py [--tokenizer PATH] [--classifier PATH] [--output DIR] [--check]
                           [--fp16] [--min C,A] [--opt C,A] [--max C,A] [--workspace-gb N]

The same as ``neurorvq-stream build`` (``neurorvq_stream._build`` holds the work); run
``python build_engine.py --help`` for the options.
"""

import argparse
import sys

from neurorvq_stream._build import add_arguments, run
from neurorvq_stream.cli import run_handler

if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description="Export NeuroRVQ checkpoints to ONNX and build TensorRT engines (cached).")
    add_arguments(parser)
    parser.add_argument("-v", "--verbose", action="store_true", help="show tracebacks")
    sys.exit(run_handler(run, parser.parse_args()))
