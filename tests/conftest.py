"""Test-wide set-up: loopback-only LSL and offscreen Qt before anything imports them."""

import os
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
# Set before pylsl is imported anywhere: liblsl reads its configuration once.
os.environ.setdefault("LSLAPICFG", str(REPO / "streamer" / "lsl_api_loopback.cfg"))
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

PARITY_DIR = REPO / "tests" / "fixtures" / "parity_v1"
