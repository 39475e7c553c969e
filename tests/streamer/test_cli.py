"""The console script: listing streams, and `run` without a stream explains how to pick one."""

import uuid

import pylsl
from conftest import EVENTUALLY_S

from streamer._lsl import find_streams
from streamer.cli import build_parser, main


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
                 "/nonexistent.yaml"]) == 1
    assert "does not exist" in capsys.readouterr().err


def test_every_subcommand_has_help():
    parser = build_parser()
    for command in ("list", "play", "run", "demo"):
        assert parser.parse_args([command] + (["f.edf"] if command == "play" else [])).handler


def test_run_headless_prints_status_and_latency_summary(capsys, tmp_path):
    from pathlib import Path

    import numpy as np

    from streamer._lsl import ChannelInfo
    from streamer._player import Player, Recording

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
