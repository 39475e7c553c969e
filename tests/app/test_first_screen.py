"""What the real console script prints before its first status line fits one screen.

``demo`` runs as a user starts it (its own process, loopback LSL): at most 15 lines of at
most 120 characters before the first status line (written as ``\\r[``), with the mapping in
counts and the engine in one line; ``--verbose`` adds the full channel table. A warning
logged there is wrapped, not cut.
"""

import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

from neurorvq_stream._console import WIDTH, WrappingFormatter

SCRIPT = Path(sys.executable).with_name("neurorvq-stream")


def _start(*flags: str) -> subprocess.Popen:
    return subprocess.Popen([str(SCRIPT), *flags, "demo", "--headless", "--duration", "1"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=os.environ)


def _first_screen(process: subprocess.Popen) -> list[str]:
    """The lines (stdout and stderr, as a terminal shows them) before the first status line."""
    out, _ = process.communicate(timeout=120)
    text = out.decode()
    assert process.returncode == 0, text
    assert "\r[" in text, f"no status line:\n{text}"
    return text.split("\r[")[0].splitlines()


@pytest.mark.slow
def test_demo_first_screen_fits_and_verbose_adds_the_table():
    plain, verbose = _start(), _start("--verbose")  # side by side: one wait for both
    lines, verbose_lines = _first_screen(plain), _first_screen(verbose)
    assert len(lines) <= 15, "\n".join(lines)
    assert max(map(len, lines)) <= WIDTH == 120, "\n".join(lines)
    mapping = [line for line in lines if line.startswith("Channel mapping:")]
    assert mapping == [line for line in lines if "by label" in line and "by position" in line]
    assert len([line for line in lines if line.startswith("Engine:")]) == 1
    assert not any(line.split()[:2] == ["#", "stream"] for line in lines)
    # --verbose: the table, one row per mapped channel, and the engine's full description
    header = next(k for k, line in enumerate(verbose_lines) if line.split()[:2] == ["#", "stream"])
    n_mapped = int(mapping[0].split()[2])
    rows = verbose_lines[header + 1:header + 1 + n_mapped]
    assert all(line.split()[0].isdigit() for line in rows), "\n".join(rows)
    engine = next(line for line in verbose_lines if line.startswith("Engine:"))
    assert "models: tokenizer" in engine and len(engine) > 120


def test_a_long_warning_is_wrapped_whole():
    message = " ".join(f"word{k}" for k in range(60))
    record = logging.LogRecord("neurorvq_stream", logging.WARNING, __file__, 1, message, None,
                               None)
    text = WrappingFormatter("%(levelname)s %(name)s: %(message)s").format(record)
    assert len(text.splitlines()) > 1 and max(map(len, text.splitlines())) <= WIDTH
    assert text.split() == ["WARNING", "neurorvq_stream:", *message.split()]
