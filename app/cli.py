"""``neurorvq-stream``: the command line. Each command lives in its own module.

Building the parser imports only the command modules, which import nothing heavy at
module level (torch, scipy, Qt load inside the commands that need them), so ``--help``,
``--version`` and ``list`` answer at once.

Exit status: 0 done; 1 the run itself failed (a pipeline thread died, a check failed);
2 a user's mistake (a bad flag, a missing file, a bad config value, a stream that is not
there), reported in one ``error:`` line (``--verbose`` adds the traceback) like argparse
reports a bad flag. Anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import argparse
import logging
import sys
import traceback
from collections.abc import Callable, Sequence

from neurorvq_stream import __version__

from . import _build, _calibrate, _demo, _list, _play, _report, _run
from ._console import WrappingFormatter

#: Command modules, in the order ``--help`` lists them; each has ``add_parser(sub)``.
COMMANDS = (_list, _play, _run, _demo, _calibrate, _report, _build)

#: Exceptions that report a user's mistake or an unavailable resource, not a bug.
USER_ERRORS = (ValueError, LookupError, OSError, TimeoutError)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="neurorvq-stream",
        description="Real-time NeuroRVQ tokens, reconstructions and BCI predictions over LSL.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true",
                        help="debug logging, and tracebacks with errors")
    sub = parser.add_subparsers(dest="command", required=True)
    for command in COMMANDS:
        command.add_parser(sub)
    return parser


def run_handler(handler: Callable[[argparse.Namespace], int], args: argparse.Namespace) -> int:
    """Run a command; a user error becomes one line on stderr and exit status 2."""
    verbose = getattr(args, "verbose", False)
    console = logging.StreamHandler()
    log_format = "%(levelname)s %(name)s: %(message)s"
    console.setFormatter(logging.Formatter(log_format) if verbose
                         else WrappingFormatter(log_format))
    logging.basicConfig(level=logging.DEBUG if verbose else logging.WARNING, handlers=[console])
    try:
        return int(handler(args))
    except KeyboardInterrupt:
        print("Interrupted.", file=sys.stderr)
        return 130
    except USER_ERRORS as err:
        if verbose:
            traceback.print_exc()
        message = err.args[0] if isinstance(err, KeyError) and err.args else err
        print(f"error: {message}", file=sys.stderr)
        return 2


def main(argv: Sequence[str] | None = None) -> int:
    """Console entry point; returns the exit code."""
    args = build_parser().parse_args(argv)
    return run_handler(args.handler, args)


if __name__ == "__main__":
    sys.exit(main())
