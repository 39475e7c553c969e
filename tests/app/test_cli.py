"""The console script: listing streams, and `run` without a stream explains how to pick one."""

import os
import subprocess
import sys
import uuid

import pylsl
import pytest
from helpers import EVENTUALLY_S

from neurorvq_stream.cli import build_parser, main
from neurorvq_stream.streamer._lsl import find_streams


def test_list_shows_a_stream_in_reach(capsys):
    name = f"cli-{uuid.uuid4().hex[:8]}"
    outlet = pylsl.StreamOutlet(pylsl.StreamInfo(name, "EEG", 8, 512.0, "float32", name))
    assert find_streams(name=name, timeout=EVENTUALLY_S)  # up and answering discovery
    assert main(["list", "--timeout", "1.5"]) == 0
    out = capsys.readouterr().out
    assert f"'{name}' type='EEG' 8 ch @ 512 Hz" in out
    del outlet


def test_run_without_a_stream_lists_and_explains(capsys):
    name = f"cli-{uuid.uuid4().hex[:8]}"
    outlet = pylsl.StreamOutlet(pylsl.StreamInfo(name, "EEG", 4, 250.0, "float32", name))
    assert find_streams(name=name, timeout=EVENTUALLY_S)  # up and answering discovery
    assert main(["run"]) == 2
    out = capsys.readouterr().out
    assert name in out and "--stream NAME" in out
    del outlet


def test_run_with_a_missing_config_file_is_a_clear_error(capsys):
    assert main(["run", "--stream", f"absent-{uuid.uuid4().hex[:8]}", "--config",
                 "/nonexistent.yaml"]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_every_subcommand_has_help_and_a_handler(capsys):
    parser = build_parser()
    commands = parser._subparsers._group_actions[0].choices
    assert set(commands) == {"list", "play", "run", "demo", "calibrate", "build"}
    required = {"play": ["f.edf"], "calibrate": ["--classes", "a", "b", "--output", "h.st"]}
    for command in commands:
        assert parser.parse_args([command, *required.get(command, [])]).handler
        with pytest.raises(SystemExit) as exit:
            parser.parse_args([command, "--help"])
        assert exit.value.code == 0
        assert f"neurorvq-stream {command}" in capsys.readouterr().out


def test_run_headless_prints_status_and_latency_summary(capsys, tmp_path):
    from pathlib import Path

    import numpy as np

    from neurorvq_stream.streamer._lsl import ChannelInfo
    from neurorvq_stream.streamer._player import Player, Recording

    fixtures = Path(__file__).resolve().parents[1] / "fixtures" / "parity_v1"
    name = f"cli-run-{uuid.uuid4().hex[:8]}"
    data = 20 * np.random.default_rng(0).standard_normal((2500, 4)).astype(np.float32)
    rec = Recording(data, 250.0, [ChannelInfo(c, "microvolts", "EEG")
                                  for c in ("C3", "Cz", "C4", "Pz")], [])
    player = Player(rec, name=name, loop=True)
    player.start()
    config = tmp_path / "run.yaml"
    config.write_text("windows:\n  n_patches: 1\n")
    code = main(["run", "--stream", name, "--headless", "--duration", "6", "--hop", "0.25",
                 "--config", str(config),
                 "--tokenizer", str(fixtures / "tokenizer.pt"),
                 "--classifier", str(fixtures / "foundation_model.pt")])
    player.stop()
    out = capsys.readouterr().out
    assert code == 0
    assert "[streaming] windows" in out and "end_to_end" in out
    done = int(out.split("Windows done ")[1].split(",")[0])
    assert done >= 1


@pytest.mark.parametrize("args", [["--help"], ["--version"], ["list", "--timeout", "0.1"],
                                  ["run", "--help"], ["calibrate", "--help"]])
def test_light_commands_do_not_import_the_heavy_stack(args):
    # In a fresh interpreter: what the command imported is what a user waits for.
    probe = ("import runpy, sys\n"
             f"sys.argv = ['neurorvq-stream', *{args!r}]\n"
             "try:\n    runpy.run_module('neurorvq_stream', run_name='__main__')\n"
             "except SystemExit as exit:\n    assert exit.code == 0, exit.code\n"
             "print(sorted(m for m in ('torch', 'scipy', 'mne', 'sklearn', 'PySide6') "
             "if m in sys.modules))\n")
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                            timeout=60, env={**os.environ})
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "[]"
