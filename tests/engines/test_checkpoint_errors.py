"""Unusable checkpoint files: one CheckpointError naming the file, the fault and the fix.

Every bad file is made here the way it happens to users: a text or HTML page saved under
a checkpoint's name, a Git LFS pointer, a download cut short, and a pickle that would run
code when loaded.
"""

import argparse
import json
import os
import shlex
import uuid

import numpy as np
import pytest
import torch
from helpers import PARITY_DIR
from safetensors.torch import save_file

from neurorvq_stream.engines import CheckpointError, load_classifier, load_tokenizer
from neurorvq_stream.engines._checkpoint import read_sidecar, read_state_dict, save_checkpoint

WEIGHTS = {"encoder.cls_token": torch.zeros(1, 1, 8), "encoder.blocks.0.w": torch.ones(64, 64)}


class _RunsCommand:
    """Unpickling this runs a shell command: what a planted checkpoint would do."""

    def __init__(self, command: str) -> None:
        self.command = command

    def __reduce__(self):
        return os.system, (self.command,)


def _one_line(err: pytest.ExceptionInfo) -> str:
    message = str(err.value)
    assert "\n" not in message
    return message


def _cut(path, keep: float):
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])
    return path


@pytest.mark.parametrize("suffix", [".pt", ".safetensors"])
def test_a_text_file_named_like_a_checkpoint(tmp_path, suffix):
    path = tmp_path / f"model{suffix}"
    path.write_text("<!DOCTYPE html><html><body>404 Not Found</body></html>\n")
    with pytest.raises(CheckpointError) as err:
        read_state_dict(path)
    assert _one_line(err) == (
        f"Checkpoint {str(path)!r} is a text file, not a checkpoint (it begins "
        "'<!DOCTYPE html><html><body>404 Not Found</body></html>'); pass the .pt or "
        ".safetensors file that holds the weights.")


def test_a_git_lfs_pointer_says_to_fetch_the_weights(tmp_path):
    path = tmp_path / "model.pt"
    path.write_text("version https://git-lfs.github.com/spec/v1\noid sha256:ab12\nsize 14063115\n")
    with pytest.raises(CheckpointError, match=r"is a Git LFS pointer, not the weights; fetch "
                                              r"them with `git lfs pull`"):
        read_state_dict(path)


@pytest.mark.parametrize("suffix", [".pt", ".safetensors"])
def test_an_empty_file(tmp_path, suffix):
    path = tmp_path / f"model{suffix}"
    path.touch()
    with pytest.raises(CheckpointError, match=r"is empty \(0 bytes\); copy it again"):
        read_state_dict(path)


def test_a_truncated_pt_file(tmp_path):
    path = tmp_path / "model.pt"
    torch.save(WEIGHTS, path)
    assert read_state_dict(path).keys() == WEIGHTS.keys()  # whole, it loads
    with pytest.raises(CheckpointError) as err:
        read_state_dict(_cut(path, 0.6))
    assert _one_line(err) == (
        f"Checkpoint {str(path)!r} is cut short: a torch.save file is a zip archive, and the "
        "index at its end is missing; copy it again from its source (an interrupted download "
        "or copy leaves this).")


def test_a_truncated_safetensors_file_says_how_much_is_missing(tmp_path):
    path = tmp_path / "model.safetensors"
    save_file(WEIGHTS, str(path))
    whole = path.stat().st_size
    _cut(path, 0.5)
    with pytest.raises(CheckpointError) as err:
        read_state_dict(path)
    assert _one_line(err) == (
        f"Checkpoint {str(path)!r} is cut short: it holds {whole // 2} of the {whole} bytes "
        "its header describes (50% missing); copy it again from its source (an interrupted "
        "download or copy leaves this).")
    _cut(path, 0.01)  # now even the header is incomplete
    with pytest.raises(CheckpointError, match="is cut short or not a safetensors file: its "
                                              "header needs"):
        read_state_dict(path)


def test_binary_garbage_is_named_as_damaged(tmp_path):
    path = tmp_path / "model.pt"
    path.write_bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    with pytest.raises(CheckpointError) as err:
        read_state_dict(path)
    assert _one_line(err).startswith(
        f"Checkpoint {str(path)!r} is not a torch.save file or is damaged (")


def test_a_pickle_that_would_run_code_is_refused_and_nothing_runs(tmp_path):
    planted = tmp_path / "planted.pt"
    ran = tmp_path / "code-ran"
    torch.save({"w": torch.zeros(2), "x": _RunsCommand(f"touch {shlex.quote(str(ran))}")},
               planted)
    with pytest.raises(CheckpointError) as err:
        read_state_dict(planted)
    assert not ran.exists()
    message = _one_line(err)
    assert message.startswith(
        f"Checkpoint {str(planted)!r} was refused: unpickling it calls posix.system, and only "
        "tensors are read from a .pt file (nothing in it was run).")
    assert "weights_only=False" not in message  # never advise the unsafe load
    with pytest.raises(CheckpointError):
        load_tokenizer(planted)
    assert not ran.exists()
    # The file is really malicious: an unsafe load runs its command.
    torch.load(planted, weights_only=False)
    assert ran.exists()


def test_a_training_checkpoint_with_python_objects_is_refused_with_what_to_do(tmp_path):
    path = tmp_path / "train_state.pt"
    torch.save({"model": WEIGHTS, "args": argparse.Namespace(lr=1e-3)}, path)
    with pytest.raises(CheckpointError, match=r"unpickling it calls argparse\.Namespace.*save its "
                                              r"state_dict alone"):
        read_state_dict(path)


def test_folders_and_wrong_suffixes(tmp_path):
    with pytest.raises(CheckpointError, match=r"is a folder; pass the \.pt or \.safetensors file"):
        read_state_dict(tmp_path)
    (tmp_path / "model.onnx").write_bytes(b"\x08\x07")
    with pytest.raises(CheckpointError, match=r"has suffix '\.onnx'; expected \.pt"):
        read_state_dict(tmp_path / "model.onnx")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        read_state_dict(tmp_path / "absent.pt")


def test_the_wrong_kind_of_neurorvq_checkpoint_is_named(tmp_path):
    with pytest.raises(CheckpointError) as err:
        load_classifier(PARITY_DIR / "tokenizer.pt")
    assert _one_line(err).startswith(
        f"Checkpoint {str(PARITY_DIR / 'tokenizer.pt')!r}: not a NeuroRVQ foundation-model "
        "checkpoint: key 'cls_token' is missing")
    assert str(err.value).endswith("; it looks like a tokenizer checkpoint.")
    with pytest.raises(CheckpointError, match="it looks like a foundation-model checkpoint"):
        load_tokenizer(PARITY_DIR / "foundation_model.pt")


def test_a_damaged_sidecar_is_named_not_ignored(tmp_path):
    path = save_checkpoint(torch.nn.Linear(2, 2), tmp_path / "head.safetensors",
                           classes=["left", "right"])
    assert read_sidecar(path)["classes"] == ["left", "right"]
    side = tmp_path / "head.safetensors.json"
    side.write_text(json.dumps({"classes": ["left", "right"]})[:-5])
    with pytest.raises(CheckpointError, match=r"sidecar .*head\.safetensors\.json.* is not valid "
                                              r"JSON .*holds the checkpoint's channels and class"):
        read_sidecar(path)
    side.write_text("[1, 2]")
    with pytest.raises(CheckpointError, match="holds a list, not a JSON object"):
        read_sidecar(path)


def test_the_cli_prints_one_line_for_a_bad_checkpoint(tmp_path, capsys):
    from neurorvq_stream.cli import main
    from neurorvq_stream.streamer._lsl import ChannelInfo
    from neurorvq_stream.streamer._player import Player, Recording

    name = f"ckpt-{uuid.uuid4().hex[:8]}"
    data = np.zeros((2500, 4), np.float32)
    rec = Recording(data, 250.0, [ChannelInfo(c, "microvolts", "EEG")
                                  for c in ("C3", "Cz", "C4", "Pz")], [])
    player = Player(rec, name=name, loop=True)
    player.start()
    bad = tmp_path / "tokenizer.pt"
    bad.write_text("not a checkpoint\n")
    try:
        code = main(["run", "--stream", name, "--headless", "--duration", "1",
                     "--tokenizer", str(bad), "--classifier", "none"])
    finally:
        player.stop()
    err = capsys.readouterr().err
    assert code != 0
    assert f"Checkpoint {str(bad)!r} is a text file, not a checkpoint" in err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1
