"""The shared step loop: limits, evaluation hook, progress log, resume, and what it refuses."""

import json
import os
import pickle
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest
import torch

from neurorvq_stream.engines import NeuroRVQConfig
from neurorvq_stream.engines._foundation import NeuroRVQFoundationModel
from neurorvq_stream.training import marker_epochs
from neurorvq_stream.training._checkpointing import (
    ResumeError,
    default_work_dir,
    load_state,
    save_state,
)
from neurorvq_stream.training._data import CHECKER_CLASSES
from neurorvq_stream.training._finetune import FinetuneConfig, finetune
from neurorvq_stream.training._loop import LOG_FILE, STATE_FILE, Evaluation, Session, run_steps

REPO = Path(__file__).resolve().parents[2]


class _Regression:
    """A linear model fitted by SGD on noisy batches drawn from a seeded generator."""

    def __init__(self, lr: float = 0.2) -> None:
        torch.manual_seed(0)
        self.model = torch.nn.Linear(4, 1)
        self.optimizer = torch.optim.AdamW(self.model.parameters(), lr=lr)
        self.batches = torch.Generator().manual_seed(0)
        self.true_w = torch.tensor([[1.0, -2.0, 0.5, 3.0]])
        self.modes: list[bool] = []

    def parts(self) -> dict:
        return {"model": self.model, "optimizer": self.optimizer, "batches": self.batches}

    def step(self, i: int) -> dict[str, float]:
        self.modes.append(self.model.training)
        x = torch.randn(16, 4, generator=self.batches)
        noise = 0.1 * torch.randn(16, 1)  # global RNG: restored on resume too
        loss = torch.nn.functional.mse_loss(self.model(x), x @ self.true_w.T + noise)
        self.optimizer.zero_grad()
        loss.backward()
        self.optimizer.step()
        return {"loss": float(loss.detach())}

    def error(self) -> dict[str, float]:
        self.model.eval()
        return {"weight_error": float((self.model.weight - self.true_w).abs().max().detach())}

    def run(self, total: int = 12, session: Session | None = None,
            evaluation: Evaluation | None = None, settings: dict | None = None) -> list[dict]:
        return run_steps("regression", total, self.step, self.parts(),
                         settings or {"lr": 0.2}, session, evaluation, progress=False)


def test_interrupted_and_resumed_run_equals_the_straight_one(tmp_path):
    straight = _Regression()
    h_straight = straight.run()
    assert h_straight[-1]["loss"] < 0.2 * h_straight[0]["loss"]

    first = _Regression()
    assert len(first.run(session=Session(tmp_path, save_every=100, until=5))) == 5
    resumed = _Regression()  # fresh weights, optimizer and generator: all come from the file
    h_resumed = resumed.run(session=Session(tmp_path))
    assert h_resumed == h_straight
    torch.testing.assert_close(resumed.model.weight, straight.model.weight, rtol=0, atol=0)
    _, info = load_state(tmp_path / STATE_FILE)
    assert info["step"] == 12 and len(info["history"]) == 12


def test_time_limit_saves_and_ends_the_session(tmp_path):
    run = _Regression()
    history = run.run(session=Session(tmp_path, save_every=100, max_seconds=0.0))
    assert len(history) == 1
    assert load_state(tmp_path / STATE_FILE)[1]["step"] == 1
    assert len(_Regression().run(session=Session(tmp_path))) == 12


def test_evaluation_hook_and_progress_log(tmp_path):
    run = _Regression()
    history = run.run(session=Session(tmp_path, log_every=4),
                      evaluation=Evaluation(run.error, every=5))
    evaluated = [i + 1 for i, h in enumerate(history) if "eval_weight_error" in h]
    assert evaluated == [5, 10, 12]
    assert history[-1]["eval_weight_error"] < history[4]["eval_weight_error"]
    # The hook leaves the model in eval mode; every step still ran in training mode.
    assert all(run.modes) and not run.model.training
    lines = [json.loads(line) for line in (tmp_path / LOG_FILE).read_text().splitlines()]
    assert [line["step"] for line in lines] == [4, 8, 12]
    assert lines[-1]["eval_weight_error"] == history[-1]["eval_weight_error"]
    assert lines[0]["loss"] == pytest.approx(np.mean([h["loss"] for h in history[:4]]))


def test_resume_with_other_settings_is_refused(tmp_path):
    _Regression().run(session=Session(tmp_path, until=3))
    with pytest.raises(ResumeError, match=r"other settings \(differing: lr\)"):
        _Regression(lr=0.01).run(session=Session(tmp_path), settings={"lr": 0.01})


class _Payload:
    """Unpickling this creates ``path``: the proof that a pickle would have run code."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self):
        return (open, (str(self.path), "w"))


def test_planted_malicious_state_file_is_refused_without_running_it(tmp_path):
    proof = tmp_path / "payload-ran"
    planted = tmp_path / "run" / STATE_FILE
    planted.parent.mkdir()
    torch.save({"model": _Payload(proof)}, planted)
    # The file is live: an unrestricted unpickler runs it (as weights_only=False did).
    with tempfile.TemporaryDirectory() as other:
        live = Path(other) / "live"
        pickle.loads(pickle.dumps(_Payload(live)))
        assert live.exists()

    with pytest.raises(ResumeError) as refused:
        _Regression().run(session=Session(tmp_path / "run"))
    message = str(refused.value)
    assert str(planted) in message and "not a training state" in message
    assert "Delete that file" in message
    assert not proof.exists()


@pytest.mark.parametrize("content", [b"", b"not a state", b"\x08\x00\x00\x00\x00\x00\x00\x00{}"])
def test_damaged_or_foreign_state_files_are_refused(tmp_path, content):
    path = tmp_path / STATE_FILE
    path.write_bytes(content)
    with pytest.raises(ResumeError, match="Nothing was loaded"):
        load_state(path)


def test_state_round_trip_keeps_nesting_and_refuses_unknown_objects(tmp_path):
    state = {"opt": {"state": {0: {"step": torch.tensor(3.0)}},
                     "param_groups": [{"betas": (0.9, 0.999), "params": [0], "foreach": None}]}}
    save_state(tmp_path / STATE_FILE, state, {"step": 7})
    loaded, info = load_state(tmp_path / STATE_FILE)
    assert info == {"step": 7}
    assert loaded["opt"]["param_groups"][0]["betas"] == (0.9, 0.999)
    torch.testing.assert_close(loaded["opt"]["state"][0]["step"], torch.tensor(3.0))
    with pytest.raises(TypeError, match="Cannot store _Payload"):
        save_state(tmp_path / "x.safetensors", {"bad": _Payload(tmp_path)}, {})


def test_default_work_dir_is_per_user_and_configurable(monkeypatch, tmp_path):
    monkeypatch.delenv("NEURORVQ_TRAIN_DIR", raising=False)
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)  # the test run's scratch, not a user's
    default = default_work_dir()
    assert not default.is_relative_to(tempfile.gettempdir())
    assert default.is_relative_to(Path.home()) or "XDG_CACHE_HOME" in os.environ
    monkeypatch.setenv("NEURORVQ_TRAIN_DIR", str(tmp_path / "mine"))
    assert default_work_dir() == tmp_path / "mine"


@pytest.mark.slow
def test_full_finetune_resumes_exactly(s01, tmp_path):
    channels = ("o1", "oz", "o2", "po7", "po8")
    x, y, _ = marker_epochs(s01, CHECKER_CLASSES)
    x = x[:48, [s01.channels.index(c) for c in channels]]
    y = y[:48]
    cfg = NeuroRVQConfig(depth=1, n_code=16, code_dim=8, n_out=1, layer_scale=True)
    recipe = FinetuneConfig(epochs=3, warmup_epochs=1, batch_size=16)

    def fresh() -> NeuroRVQFoundationModel:
        torch.manual_seed(0)
        return NeuroRVQFoundationModel(cfg)

    straight = fresh()
    losses = finetune(straight, x, y, channels, 2, recipe, progress=False)
    assert len(losses) == 3
    first = fresh()
    finetune(first, x, y, channels, 2, recipe, progress=False,
             session=Session(tmp_path, until=4))
    resumed = fresh()
    assert finetune(resumed, x, y, channels, 2, recipe, progress=False,
                    session=Session(tmp_path)) == losses
    for name, value in straight.state_dict().items():
        torch.testing.assert_close(resumed.state_dict()[name], value, msg=name)
    assert all(p.requires_grad for p in resumed.parameters())


@pytest.mark.slow
def test_train_defaults_refuses_a_planted_state_file_in_one_message(tmp_path):
    planted = tmp_path / "work" / "quick" / "tokenizer" / STATE_FILE
    planted.parent.mkdir(parents=True)
    proof = tmp_path / "payload-ran"
    torch.save({"model": _Payload(proof)}, planted)
    done = subprocess.run(
        [sys.executable, "-m", "neurorvq_stream.training.train_defaults", "--quick",
         "--threads", "1", "--work-dir", str(tmp_path / "work"), "--out", str(tmp_path / "models")],
        cwd=REPO, capture_output=True, text=True, timeout=600,
    )
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    assert str(planted) in done.stderr and "Nothing was loaded" in done.stderr
    assert not proof.exists() and not (tmp_path / "models").exists()
