#!/usr/bin/env bash
# GPU checks, for a session lent the device machine (PyTorch + CUDA there; no pylsl, no Qt,
# no network). Prepare here, once:
#     .venv/bin/pip download -d .gpu_wheels --no-deps lazy_loader safetensors skops
# then run through the device tool with `carry: [".gpu_wheels"]` and the command
#     bash scripts/gpu_check.sh
# The engine tests (CUDA ones included) and the GPU benchmarks write to $OUT.
set -u
cd "$(dirname "$0")/.."
out=${OUT:-gpu_out}
mkdir -p "$out"
{
    nvidia-smi
    python3 -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda)"
} > "$out/machine.txt" 2>&1
if [ -d .gpu_wheels ]; then
    python3 -m pip install --no-index --find-links .gpu_wheels lazy_loader safetensors skops \
        > "$out/install.txt" 2>&1
fi
python3 -m pip install --no-deps --no-build-isolation -e . >> "$out/install.txt" 2>&1 \
    || echo "editable install failed: see install.txt" >> "$out/machine.txt"
python3 -m pytest tests/engines -q -p no:cacheprovider -ra > "$out/tests_engines.txt" 2>&1
python3 benchmarks/bench_backends.py --compile > "$out/bench_backends.txt" 2>&1
python3 benchmarks/bench_engine.py --reps 20 > "$out/bench_engine.txt" 2>&1
tail -n 3 "$out"/*.txt
