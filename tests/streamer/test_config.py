"""RunConfig: YAML/TOML loading, flag overrides, and one ConfigError naming file:line and key."""

import uuid

import pytest

from neurorvq_stream.cli import main
from neurorvq_stream.streamer._config import ConfigError, RunConfig, WindowConfig

YAML = """
stream:
  name: BioSemi
  stall_timeout: 2.5
  unit: mV
  rate_tolerance: 0.05
markers:
  name: BioSemi-Markers
  labels: [left, right]
preprocessing:
  l_freq: 0
  notch: false
  reference: average
quality:
  flat_uv: 0.5
  max_flagged_fraction: 0.1
windows:
  n_patches: 2
  hop: 0.25
models:
  tokenizer: tok.pt
engine: onnxruntime
outlets:
  tokens: false
  name: room-b
record:
  path: session.xdf
"""

TOML = """
engine = "onnxruntime"
[stream]
name = "BioSemi"
stall_timeout = 2.5
unit = "mV"
rate_tolerance = 0.05
[markers]
name = "BioSemi-Markers"
labels = ["left", "right"]
[preprocessing]
l_freq = 0
notch = false
reference = "average"
[quality]
flat_uv = 0.5
max_flagged_fraction = 0.1
[windows]
n_patches = 2
hop = 0.25
[models]
tokenizer = "tok.pt"
[outlets]
tokens = false
name = "room-b"
[record]
path = "session.xdf"
"""


def _load(tmp_path, text: str, suffix: str = ".yaml") -> RunConfig:
    path = tmp_path / f"run{suffix}"
    path.write_text(text)
    return RunConfig.from_file(path)


def _error(tmp_path, text: str, suffix: str = ".yaml") -> ConfigError:
    with pytest.raises(ConfigError) as caught:
        _load(tmp_path, text, suffix)
    return caught.value


def test_yaml_and_toml_describe_the_same_run(tmp_path):
    a = _load(tmp_path, YAML, ".yaml")
    b = _load(tmp_path, TOML, ".toml")
    assert a == b
    assert (a.stream.name, a.stream.stall_timeout, a.windows.n_patches) == ("BioSemi", 2.5, 2)
    assert (a.stream.unit, a.stream.rate_tolerance) == ("mV", 0.05)
    assert a.markers.labels == ("left", "right")
    assert (a.preprocessing.l_freq, a.preprocessing.notch) == (0.0, False)
    assert a.preprocessing.reference == "average"
    assert (a.quality.flat_uv, a.quality.max_flagged_fraction) == (0.5, 0.1)
    assert a.outlets.tokens is False and a.outlets.predictions is True
    assert (a.outlets.name, a.outlets.source_id) == ("room-b", None)
    assert (a.record.path, a.record.overwrite) == ("session.xdf", False)
    assert a.preprocessing.line_freq == RunConfig().preprocessing.line_freq


def test_defaults_are_the_documented_ones():
    cfg = RunConfig()
    assert cfg.stream.unit is None  # trust the stream's metadata
    assert (cfg.outlets.name, cfg.outlets.source_id) == (None, None)  # derived from the input
    assert (cfg.record.path, cfg.record.overwrite) == (None, False)
    assert cfg.preprocessing.reference == "none" and cfg.preprocessing.notch is True
    assert 0 < cfg.stream.rate_tolerance < 1
    assert 0 <= cfg.quality.max_flagged_fraction <= 1


def test_whole_numbers_are_taken_for_numbers_and_floats_for_whole_numbers(tmp_path):
    cfg = _load(tmp_path, "windows:\n  n_patches: 2.0\n  hop: 1\n")
    assert (cfg.windows.n_patches, cfg.windows.hop) == (2, 1.0)
    assert isinstance(cfg.windows.n_patches, int) and isinstance(cfg.windows.hop, float)


def test_slow_cortical_potentials_need_no_high_pass_or_a_very_low_one(tmp_path):
    assert _load(tmp_path, "preprocessing: {l_freq: 0.01}\n").preprocessing.l_freq == 0.01
    assert _load(tmp_path, "preprocessing: {l_freq: 0}\n").preprocessing.l_freq == 0.0
    err = _error(tmp_path, "preprocessing: {l_freq: -0.1}\n")
    assert "preprocessing.l_freq: must be >= 0 Hz (0 = no high-pass)" in str(err)


def test_flags_override_the_file_and_none_keeps_it(tmp_path):
    cfg = _load(tmp_path, YAML).override(
        **{"stream.name": "Other", "engine": "pytorch", "models.classifier": None,
           "stream.unit": "V"}
    )
    assert (cfg.stream.name, cfg.engine, cfg.models.tokenizer) == ("Other", "pytorch", "tok.pt")
    assert (cfg.stream.stall_timeout, cfg.stream.unit) == (2.5, "V")


# Each mistake of the issue, as a user writes it, with the line and message it must give.
@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("windows:\n  hop: \"0.5\"\n",
         "run.yaml:2: windows.hop: expected a number (seconds), got '0.5' (a string); "
         "write 0.5 without quotes"),
        ("stream:\n  stall_timeout: 1s\n",
         "run.yaml:2: stream.stall_timeout: expected a number (seconds), got '1s' (a string); "
         "write a plain number, in seconds"),
        ("windows:\n  n_patches: 2.5\n",
         "run.yaml:2: windows.n_patches: expected a whole number (1 s patches), got 2.5"),
        ("markers:\n  name: M\n  type: no\n",
         "run.yaml:3: markers.type: expected a string or null, got False (a boolean); YAML "
         "reads yes/no/on/off/true/false as a boolean: quote the text"),
        ("stream:\n  name: 123\n",
         "run.yaml:2: stream.name: expected a string or null, got 123 (an integer); "
         "quote it: '123'"),
        ("markers:\n  name: M\n  labels: left\n",
         "run.yaml:3: markers.labels: expected a list of strings or null, got 'left' "
         "(a string); write [left] for a single one"),
        ("outlets: {tokens: \"no\"}\n",
         "run.yaml:1: outlets.tokens: expected true or false, got 'no' (a string); "
         "write true or false without quotes"),
        ("budgets: {inference_ms: fast}\n",
         "run.yaml:1: budgets.inference_ms: expected a number (ms), got 'fast' (a string)"),
        ("stream: 5\n",
         "run.yaml:1: stream: must be a section (key: value lines under it), got 5"),
        ("\n\nwindows: [1, 2]\n", "run.yaml:3: windows: must be a section"),
        ("stream:\n  unit: furlong\n",
         "run.yaml:2: stream.unit: 'furlong' is not a unit of V, mV, uV, nV"),
        ("stream:\n  unit: ''\n",
         "run.yaml:2: stream.unit: is empty; give a value, or leave it out for none"),
        ("preprocessing:\n  reference: avg\n",
         "run.yaml:2: preprocessing.reference: got 'avg' (did you mean 'average'?); "
         "must be one of 'none', 'average'"),
        ("preprocessing:\n  line_freq: 55\n",
         "run.yaml:2: preprocessing.line_freq: got 55.0; must be one of 50.0, 60.0"),
        ("preprocessing:\n  l_freq: 50\n",
         "run.yaml:2: preprocessing.l_freq: must be below preprocessing.h_freq (44.5 Hz)"),
        ("preprocessing:\n  h_freq: 120\n",
         "run.yaml:2: preprocessing.h_freq: must be > 0 and < 100, got 120"),
        ("quality:\n  max_flagged_fraction: 1.5\n",
         "run.yaml:2: quality.max_flagged_fraction: must be >= 0 and <= 1, got 1.5"),
        ("quality:\n  flat_uv: -1\n", "run.yaml:2: quality.flat_uv: must be >= 0, got -1"),
        ("stream:\n  rate_tolerance: 0\n",
         "run.yaml:2: stream.rate_tolerance: must be > 0 and < 1, got 0"),
        ("engine: tensorflow\n",
         "run.yaml:1: engine: got 'tensorflow' (did you mean 'tensorrt'?); must be one of 'auto'"),
        ("mapping:\n  montage: biosemi129\n",
         "run.yaml:2: mapping.montage: got 'biosemi129' (did you mean 'biosemi128'?); must be"),
        ("record:\n  path: session.edf\n",
         "run.yaml:2: record.path: must name an .xdf file, got 'session.edf'"),
        ("record:\n  path: s.xdf\n  overwrite: 1\n",
         "run.yaml:3: record.overwrite: expected true or false, got 1 (an integer)"),
        ("windows:\n  n_patches: 2\n  hop: 3\n",
         "run.yaml:3: windows.hop: must be at most the window length windows.n_patches (2 s)"),
        ("windows:\n  mode: markers\n",
         "run.yaml:2: windows.mode: 'markers' needs markers.name or markers.source_id"),
        ("stream:\n  buffer_seconds: 3\n",
         "run.yaml:2: stream.buffer_seconds: must be longer than one window (4 s), got 3"),
        ("windows:\n  hop: .inf\n", "run.yaml:2: windows.hop: expected a number (seconds), "
                                    "got inf"),
        ("windows:\n  hops: 1\n",
         "run.yaml:2: windows.hops: unknown key (did you mean 'hop'?); valid keys in windows: "
         "hop, marker_length, marker_offset, mode, n_patches"),
        ("strem:\n  name: x\n",
         "run.yaml:1: strem: unknown key (did you mean 'stream'?); valid keys: adapt, budgets, "
         "decisions, engine"),
    ],
)
def test_each_mistake_is_one_line_naming_file_line_key_and_what_to_write(
        tmp_path, text, expected):
    err = _error(tmp_path, text)
    message = str(err)
    assert len(err.problems) == 1 and "\n" not in message
    assert message.startswith(str(tmp_path / "run.yaml"))
    assert expected in message


def test_all_mistakes_of_a_file_are_reported_together_in_file_order(tmp_path):
    err = _error(tmp_path, (
        "stream:\n"
        "  name: 123\n"
        "  stall_timeout: 1s\n"
        "windows:\n"
        "  hop: '0.5'\n"
        "  n_patches: 2.5\n"
        "markers: {labels: left}\n"
        "outlets: {tokens: 'no'}\n"
        "budgets: {inference_ms: fast}\n"
        "bogus: 1\n"
    ))
    assert [(p.line, p.key) for p in err.problems] == [
        (2, "stream.name"), (3, "stream.stall_timeout"), (5, "windows.hop"),
        (6, "windows.n_patches"), (7, "markers.labels"), (8, "outlets.tokens"),
        (9, "budgets.inference_ms"), (10, "bogus")]
    lines = str(err).splitlines()
    assert lines[0] == f"{tmp_path / 'run.yaml'}: 8 problems in the configuration:"
    assert len(lines) == 9


def test_a_bad_value_does_not_also_report_what_depends_on_it(tmp_path):
    # hop is wrong on its own; "hop longer than the window" would only repeat that.
    err = _error(tmp_path, "windows:\n  n_patches: 2.5\n  hop: 3\n")
    assert [p.key for p in err.problems] == ["windows.n_patches"]


def test_yaml_syntax_errors_name_file_and_line_in_one_line(tmp_path):
    err = _error(tmp_path, "stream:\n  name: x\n windows: [\n")
    assert str(err).startswith(f"{tmp_path / 'run.yaml'}:3: not valid YAML: ")
    assert "\n" not in str(err)
    err = _error(tmp_path, "stream:\n  name: 'unclosed\n")
    assert str(err).startswith(f"{tmp_path / 'run.yaml'}:") and "not valid YAML" in str(err)


def test_a_key_given_twice_in_yaml_is_an_error_not_a_silent_choice(tmp_path):
    err = _error(tmp_path, "windows:\n  hop: 0.5\n  hop: 1.0\n")
    assert f"{tmp_path / 'run.yaml'}:3: windows.hop: given twice (also on line 2)" in str(err)


def test_toml_errors_name_the_file_and_the_line_where_the_parser_knows_it(tmp_path):
    err = _error(tmp_path, "engine = 'auto'\n[windows\nhop = 1\n", ".toml")
    assert str(err).startswith(f"{tmp_path / 'run.toml'}:2: not valid TOML: ")
    err = _error(tmp_path, "[windows]\nhop = '0.5'\n", ".toml")
    assert str(err) == (f"{tmp_path / 'run.toml'}: windows.hop: expected a number (seconds), "
                        "got '0.5' (a string); write 0.5 without quotes")


@pytest.mark.parametrize(
    ("make", "expected"),
    [
        (lambda d: d / "missing.yaml", "missing.yaml: config file does not exist"),
        (lambda d: d, ": is a folder, not a config file"),
        (lambda d: _write(d / "run.json", "{}"), "use a .yaml, .yml or .toml file"),
        (lambda d: _write(d / "run.yaml", b"\xff\xfe\x00binary"), "is not a UTF-8 text file"),
        (lambda d: _write(d / "run.yaml", "- a\n- b\n"),
         "run.yaml:1: must hold a mapping of sections at the top level, got a list"),
    ],
)
def test_unusable_files_are_one_clear_line(tmp_path, make, expected):
    with pytest.raises(ConfigError) as caught:
        RunConfig.from_file(make(tmp_path))
    assert expected in str(caught.value) and "\n" not in str(caught.value)


def _write(path, content):
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content)
    return path


def test_an_empty_file_or_section_means_the_defaults(tmp_path):
    assert _load(tmp_path, "") == RunConfig()
    assert _load(tmp_path, "stream:\nwindows:\n") == RunConfig()


def test_overrides_are_checked_like_the_file_and_say_so(tmp_path):
    base = _load(tmp_path, "windows:\n  n_patches: 2\n")
    with pytest.raises(ConfigError) as caught:
        base.override(**{"stream.unit": ""})
    assert str(caught.value) == (
        "command line: stream.unit: is empty; give a value, or leave it out for none")
    with pytest.raises(ConfigError, match=r"command line: stream.unit: 'furlong' is not a unit"):
        base.override(**{"stream.unit": "furlong"})
    with pytest.raises(ConfigError, match=r"command line: windows.hop: must be at most the "
                                          r"window length windows.n_patches \(2 s\), got 3"):
        base.override(**{"windows.hop": 3.0})
    with pytest.raises(ConfigError) as caught:
        base.override(**{"stream.nme": "x", "windows.hop": "fast"})
    assert [p.key for p in caught.value.problems] == ["stream.nme", "windows.hop"]
    assert "unknown key (did you mean 'name'?)" in str(caught.value)
    with pytest.raises(ConfigError, match="'engine' is not a config section"):
        base.override(**{"engine.x": 1})


def test_a_config_built_in_code_is_checked_too():
    with pytest.raises(ConfigError, match=r"^hop: expected a number \(seconds\)"):
        WindowConfig(hop="0.5")
    with pytest.raises(ConfigError, match=r"^windows.hop: expected a number \(seconds\)"):
        RunConfig(windows={"hop": "0.5"})
    cfg = RunConfig(windows=WindowConfig(n_patches=2, hop=1))
    assert cfg.windows.hop == 1.0 and isinstance(cfg.windows.hop, float)
    assert RunConfig.from_dict(cfg.to_dict()) == cfg


def test_the_cli_prints_the_config_error_without_a_traceback(tmp_path, capsys):
    bad = tmp_path / "run.yaml"
    bad.write_text("windows:\n  hop: '0.5'\noutlets: {tokens: 'no'}\n")
    code = main(["run", "--stream", f"absent-{uuid.uuid4().hex[:8]}", "--config", str(bad)])
    err = capsys.readouterr().err
    assert code != 0
    assert f"{bad}:2: windows.hop" in err and f"{bad}:3: outlets.tokens" in err
    assert "Traceback" not in err


def test_model_checkpoints_that_do_not_exist_are_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="tokenizer checkpoint"):
        RunConfig.from_dict({"models": {"tokenizer": str(tmp_path / "no.pt")}}).tokenizer_path()
