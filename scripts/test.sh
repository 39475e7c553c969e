#!/usr/bin/env bash
# The README's test command: lint, then the test suite on a loopback-only LSL config.
#   bash scripts/test.sh                  # every test (what CI runs)
#   bash scripts/test.sh --fast           # the fast tier: everything not marked slow
#   bash scripts/test.sh tests/streamer   # extra arguments go to pytest
# Tests run in parallel worker processes (pytest-xdist): most of the suite waits on real
# time (live LSL streams, replays), not on the CPU. NEURORVQ_TEST_WORKERS sets how many
# (0: no workers, everything in this process).
set -euo pipefail
cd "$(dirname "$0")/.."
export QT_QPA_PLATFORM=offscreen
export LSLAPICFG="${LSLAPICFG:-$PWD/streamer/lsl_api_loopback.cfg}"
select=()
if [ "${1:-}" = "--fast" ]; then
    shift
    select=(-m "not slow")
fi
.venv/bin/ruff check .
.venv/bin/python -m pytest -q -n "${NEURORVQ_TEST_WORKERS:-6}" --dist loadgroup \
    "${select[@]}" "$@"
