"""Test-wide set-up: loopback-only LSL and offscreen Qt before anything imports them.

Keep this the only ``conftest.py``: tests import ``PARITY_DIR`` from it by module name.
"""

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
# Set before pylsl is imported anywhere: liblsl reads its configuration once.
os.environ.setdefault("LSLAPICFG", str(REPO / "streamer" / "lsl_api_loopback.cfg"))
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

PARITY_DIR = REPO / "tests" / "fixtures" / "parity_v1"


@pytest.fixture(scope="session")
def s01():
    """sub-s01 through the live preprocessing and BioSemi -> NeuroRVQ position mapping."""
    from training import load_recording

    return load_recording("s01")
