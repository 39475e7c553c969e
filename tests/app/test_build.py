"""build_engine.py as users run it: export, checks, cache reuse, clear TensorRT message."""

import json
import subprocess
import sys

import pytest

from neurorvq_stream.engines.backends import tensorrt_unavailable_reason
from neurorvq_stream.engines.backends._cache import file_sha256


@pytest.fixture
def build(repo):
    """Runs ``python build_engine.py ARGS`` from the repository root, as a user would."""
    def run(*args, timeout=300):
        return subprocess.run(
            [sys.executable, str(repo / "build_engine.py"), *map(str, args)],
            capture_output=True, text=True, timeout=timeout, cwd=repo,
        )

    return run


@pytest.mark.slow
def test_exports_checks_and_caches(tmp_path, build, parity_tokenizer, parity_classifier):
    out = tmp_path / "cache"
    first = build("--tokenizer", parity_tokenizer, "--classifier", parity_classifier,
                  "--output", out, "--check")
    assert first.returncode == 0, first.stdout + first.stderr
    for stage in ("tokenize", "decode", "classify"):
        assert f"[ok] fp32 {stage}: " in first.stdout
        assert f"[ok] fp32 {stage}: TensorRT static check, 0 error(s)" in first.stdout
    assert "[ok] fp32 ONNX Runtime CPU run: tokens (4, 8, 256), reconstruction (64, 800), " \
        "logits (4,)" in first.stdout
    reason = tensorrt_unavailable_reason()
    if reason is not None:
        assert "[skipped] TensorRT engines were NOT built" in first.stdout
        assert reason in first.stdout
    # fp16 for GPUs: the fp32 graphs come from the cache, the fp16 ones are new.
    second = build("--tokenizer", parity_tokenizer, "--output", out, "--fp16", "--check")
    assert second.returncode == 0, second.stderr
    assert "Engine cache hit" in second.stderr and "Rebuilding" not in second.stderr
    assert "[ok] fp16 decode: TensorRT static check, 0 error(s)" in second.stdout
    assert "[ok] fp16 ONNX Runtime CPU run: tokens (4, 8, 256)" in second.stdout
    entries = {p.name.split("-onnx-")[0] + p.name.split("-onnx-")[1][:4]: p
               for p in out.iterdir() if "-onnx-" in p.name}
    meta = json.loads((entries["tokenizerfp16"] / "metadata.json").read_text())
    assert meta["key"]["checkpoint_sha256"] == file_sha256(parity_tokenizer)
    assert meta["key"]["precision"] == "fp16"
    assert set(meta["artifacts"]) == {"tokenize.onnx", "decode.onnx"}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--tokenizer", "missing.pt"), "does not exist"),
        (("--tokenizer", "{tokenizer}", "--min", "0,1"), "must be >= 1"),
        (("--tokenizer", "{tokenizer}", "--opt", "64"), "CHANNELS,PATCHES"),
        (("--tokenizer", "{tokenizer}", "--min", "64,4", "--opt", "32,4"), "--min <= --opt"),
    ],
)
def test_argument_errors(args, message, build, parity_tokenizer):
    result = build(*(a.format(tokenizer=parity_tokenizer) for a in args), timeout=60)
    assert result.returncode == 2 and message in result.stderr
