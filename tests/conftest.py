"""Test-wide set-up: loopback-only LSL and offscreen Qt before anything imports them.

Keep this the only ``conftest.py``: tests import ``PARITY_DIR`` from it by module name.
"""

import os
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
# Set before pylsl is imported anywhere: liblsl reads its configuration once.
os.environ.setdefault("LSLAPICFG", str(REPO / "streamer" / "lsl_api_loopback.cfg"))
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

PARITY_DIR = REPO / "tests" / "fixtures" / "parity_v1"

# How far two LSL clocks on this machine may disagree after liblsl's clock-offset estimate
# (``proc_clocksync`` / ``time_correction``): tens of µs on loopback (39 µs seen), and the
# estimate is refreshed while streaming. Timestamps that went through a correction are
# compared at this precision; uncorrected ones (no ``proc_clocksync``) exactly.
CLOCK_SYNC_S = 1e-3
# Deadline for anything that only has to happen eventually (an outlet being found, data
# arriving): generous, because a loaded machine is slow, and a passing test never waits it.
EVENTUALLY_S = 30.0


def wait_until(condition, what: str, timeout: float = EVENTUALLY_S) -> None:
    """Poll ``condition`` until it holds; fail naming ``what`` if it never does."""
    end = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > end:
            raise AssertionError(f"gave up after {timeout:g} s waiting for {what}")
        time.sleep(0.01)


@pytest.fixture(scope="session")
def s01():
    """sub-s01 through the live preprocessing and BioSemi -> NeuroRVQ position mapping."""
    from training import load_recording

    return load_recording("s01")
