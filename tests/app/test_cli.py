"""The console script: listing streams, and `run` without a stream explains how to pick one."""

import os
import subprocess
import sys
import uuid

import numpy as np
import pylsl
import pytest
from helpers import EVENTUALLY_S

from neurorvq_stream._console import status_line, summary
from neurorvq_stream.cli import build_parser, main
from neurorvq_stream.streamer import Player, Recording, ResultHub
from neurorvq_stream.streamer._lsl import ChannelInfo, find_streams
from neurorvq_stream.streamer._outlets import ResultOutlets
from neurorvq_stream.streamer._results import InferenceCounts


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
    assert set(commands) == {"list", "play", "run", "demo", "calibrate", "report", "build"}
    required = {"play": ["f.edf"], "calibrate": ["--classes", "a", "b", "--output", "h.st"],
                "report": ["s.xdf"]}
    for command in commands:
        assert parser.parse_args([command, *required.get(command, [])]).handler
        with pytest.raises(SystemExit) as exit:
            parser.parse_args([command, "--help"])
        assert exit.value.code == 0
        assert f"neurorvq-stream {command}" in capsys.readouterr().out


@pytest.fixture
def small_stream():
    """A 4-channel 10-20 stream in microvolts, looping, on a fresh name."""
    name = f"cli-run-{uuid.uuid4().hex[:8]}"
    data = 20 * np.random.default_rng(0).standard_normal((2500, 4)).astype(np.float32)
    rec = Recording(data, 250.0, [ChannelInfo(c, "microvolts", "EEG")
                                  for c in ("C3", "Cz", "C4", "Pz")], [])
    player = Player(rec, name=name, loop=True)
    player.start()
    yield name
    player.stop()


def _run_args(name: str, tokenizer, classifier, seconds: int) -> list[str]:
    return ["run", "--stream", name, "--headless", "--duration", str(seconds), "--hop", "0.25",
            "--patches", "1", "--tokenizer", str(tokenizer), "--classifier", str(classifier)]


@pytest.mark.slow
def test_run_headless_prints_status_and_latency_summary(capsys, small_stream, tmp_path,
                                                        parity_tokenizer, parity_classifier):
    config = tmp_path / "run.yaml"
    config.write_text("windows:\n  n_patches: 2\n")  # the flag below wins
    code = main([*_run_args(small_stream, parity_tokenizer, parity_classifier, 6),
                 "--config", str(config)])
    out = capsys.readouterr().out
    assert code == 0
    assert "[streaming] windows" in out and "end_to_end" in out
    kinds = "Predictions, Decisions, Tokens, Reconstruction, Metrics"
    assert f"Outlets: {small_stream}-NeuroRVQ-{{{kinds}}}" in out
    done = int(out.split("Windows done ")[1].split(",")[0])
    assert done >= 1


@pytest.mark.slow
def test_run_reports_a_thread_that_died_and_exits_with_an_error(capsys, small_stream, monkeypatch,
                                                               parity_tokenizer,
                                                               parity_classifier):
    def broken(*args, **kwargs):
        raise OSError("simulated outlet failure")

    monkeypatch.setattr(ResultOutlets, "push", broken)  # the inference thread dies on it
    code = main(_run_args(small_stream, parity_tokenizer, parity_classifier, 4))
    out = capsys.readouterr().out
    assert code == 1
    assert "[error] windows" in out and "FAILED inference: OSError: simulated outlet" in out
    assert "FAILED: inference: OSError: simulated outlet failure" in out  # in the summary


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


@pytest.mark.slow
def test_run_records_the_session_and_report_reads_it(capsys, small_stream, tmp_path,
                                                     parity_tokenizer, parity_classifier):
    import pyxdf

    session = tmp_path / "session.xdf"
    args = _run_args(small_stream, parity_tokenizer, parity_classifier, 5)
    assert main([*args, "--record", str(session)]) == 0
    streams, _ = pyxdf.load_xdf(str(session))
    types = sorted(s["info"]["type"][0] for s in streams)
    assert types == ["Decisions", "EEG", "Metrics", "Predictions", "Reconstruction", "Tokens"]
    assert all(len(s["time_stamps"]) for s in streams)
    # An existing recording is never overwritten by accident.
    size = session.stat().st_size
    assert main([*args, "--record", str(session)]) == 2
    assert "already exists" in capsys.readouterr().err and session.stat().st_size == size
    html = tmp_path / "session.html"
    assert main(["report", str(session), "-o", str(html), "--no-progress"]) == 0
    assert html.stat().st_size > 10_000 and "Report written" in capsys.readouterr().out


def test_the_status_line_and_summary_say_the_estimated_accuracy_once_there_is_one():
    hub = ResultHub()
    hub.report(InferenceCounts(windows_decided=30, trials=30, trials_decided=30,
                               trial_accuracy=0.9))
    assert "estimated" not in status_line(hub) and "estimates" not in summary(hub)
    hub.report(InferenceCounts(windows_decided=30, trials=30, trials_decided=30,
                               trial_accuracy=0.9, estimated_accuracy=0.8125))
    assert "| estimated accuracy 0.81" in status_line(hub)
    assert "decoder estimates it (committee, past trials' classes) 0.81." in summary(hub)
