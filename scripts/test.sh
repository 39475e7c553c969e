#!/usr/bin/env bash
# The README's test command: lint, then the whole test suite on a loopback-only LSL config.
set -euo pipefail
cd "$(dirname "$0")/.."
export QT_QPA_PLATFORM=offscreen
export LSLAPICFG="${LSLAPICFG:-$PWD/streamer/lsl_api_loopback.cfg}"
.venv/bin/ruff check .
.venv/bin/python -m pytest -q "$@"
