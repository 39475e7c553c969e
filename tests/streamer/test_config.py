"""RunConfig: YAML/TOML loading, flag overrides, and errors that name the bad key."""

import pytest

from neurorvq_stream.streamer._config import RunConfig

YAML = """
stream:
  name: BioSemi
  stall_timeout: 2.5
windows:
  n_patches: 2
  hop: 0.25
models:
  tokenizer: tok.pt
engine: onnxruntime
outlets:
  tokens: false
"""

TOML = """
engine = "onnxruntime"
[stream]
name = "BioSemi"
stall_timeout = 2.5
[windows]
n_patches = 2
hop = 0.25
[models]
tokenizer = "tok.pt"
[outlets]
tokens = false
"""


def test_yaml_and_toml_describe_the_same_run(tmp_path):
    (tmp_path / "run.yaml").write_text(YAML)
    (tmp_path / "run.toml").write_text(TOML)
    a = RunConfig.from_file(tmp_path / "run.yaml")
    b = RunConfig.from_file(tmp_path / "run.toml")
    assert a == b
    assert (a.stream.name, a.stream.stall_timeout, a.windows.n_patches) == ("BioSemi", 2.5, 2)
    assert a.outlets.tokens is False and a.outlets.predictions is True
    assert a.preprocessing.line_freq == RunConfig().preprocessing.line_freq


def test_flags_override_the_file_and_none_keeps_it(tmp_path):
    (tmp_path / "run.yaml").write_text(YAML)
    cfg = RunConfig.from_file(tmp_path / "run.yaml").override(
        **{"stream.name": "Other", "engine": "pytorch", "models.classifier": None}
    )
    assert (cfg.stream.name, cfg.engine, cfg.models.tokenizer) == ("Other", "pytorch", "tok.pt")
    assert cfg.stream.stall_timeout == 2.5


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"strem": {"name": "x"}}, r"\['strem'\].*valid keys: \[.*'stream'"),
        ({"windows": {"hops": 1}}, r"\['windows.hops'\].*in windows: \['hop', 'marker_length'"),
    ],
)
def test_unknown_keys_are_named_with_the_valid_ones(data, message):
    with pytest.raises(KeyError, match=message):
        RunConfig.from_dict(data)


def test_bad_values_and_files_get_specific_errors(tmp_path):
    with pytest.raises(ValueError, match=r"windows\.hop"):
        RunConfig.from_dict({"windows": {"n_patches": 2, "hop": 3}})
    with pytest.raises(ValueError, match=r"needs markers\.name"):
        RunConfig.from_dict({"windows": {"mode": "markers"}})
    with pytest.raises(ValueError, match="line_freq must be 50 or 60"):
        RunConfig.from_dict({"preprocessing": {"line_freq": 55}})
    with pytest.raises(KeyError, match="unknown key 'nme'"):
        RunConfig().override(**{"stream.nme": "x"})
    (tmp_path / "run.json").write_text("{}")
    with pytest.raises(ValueError, match=r"\.yaml, \.yml or \.toml"):
        RunConfig.from_file(tmp_path / "run.json")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        RunConfig.from_file(tmp_path / "missing.yaml")
    with pytest.raises(FileNotFoundError, match="tokenizer checkpoint"):
        RunConfig.from_dict({"models": {"tokenizer": str(tmp_path / "no.pt")}}).tokenizer_path()
