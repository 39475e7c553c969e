"""One object describes a run: ``RunConfig``, loaded from YAML or TOML, overridden by flags.

Sections mirror the data flow (stream -> markers -> preprocessing -> quality -> windows ->
mapping -> models/engine -> decisions -> budgets -> outlets -> record), so a config file
reads like the pipeline.

Every setting declares its type (its annotation) and, where it matters, its unit and the
values it may take (``_setting``). A configuration is checked as a whole whenever it is
built (from a file, from flags through ``override``, or in code): unknown keys, sections
that are not mappings, wrong types, values out of range and settings that contradict each
other are collected and raised together as one :class:`ConfigError`, one line per problem
naming the file (and line, where the parser knows it), the key path and what was
expected, so a user fixes a file in one go. Values are never converted from strings:
``hop: "0.5"`` is an error, not 0.5, so ``tokens: "no"`` can never quietly mean true.
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import logging
import math
import re
import tomllib
import typing
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from neurorvq_stream.engines.backends import BACKENDS

from ._preprocessing import UNIT_NAMES, unit_scale

logger = logging.getLogger("neurorvq_stream")

# A check returns None when the (already well-typed) value is fine, else what it must be.
Check = Callable[[Any], str | None]


@dataclass(frozen=True)
class ConfigProblem:
    """One thing wrong in a configuration: the key path, what is wrong, and its line."""

    key: str
    message: str
    line: int | None = None

    def format(self, source: str | None) -> str:
        where = f"{source}:{self.line}" if source and self.line else source
        return f"{where + ': ' if where else ''}{self.key + ': ' if self.key else ''}{self.message}"


class ConfigError(ValueError):
    """Everything wrong with one configuration; ``str()`` is ready to print, one line each."""

    def __init__(self, problems: Sequence[ConfigProblem], source: str | None = None) -> None:
        self.problems = tuple(problems)
        self.source = source
        lines = [p.format(source) for p in self.problems]
        if len(lines) > 1:
            head = f"{source}: " if source else ""
            lines = [f"{head}{len(lines)} problems in the configuration:"] + [
                f"  {line}" for line in lines
            ]
        super().__init__("\n".join(lines))


# ---------------------------------------------------------------- how a setting is declared
def _setting(default: Any, check: Check | None = None, unit: str = "") -> Any:
    """A dataclass field with a value check and the unit shown in error messages."""
    return field(default=default, metadata={"check": check, "unit": unit})


def _within(low: float | None = None, high: float | None = None, *,
            low_open: bool = False, high_open: bool = False) -> Check:
    bounds = []
    if low is not None:
        bounds.append(f"{'>' if low_open else '>='} {low:g}")
    if high is not None:
        bounds.append(f"{'<' if high_open else '<='} {high:g}")
    rule = "must be " + " and ".join(bounds)

    def check(value: float) -> str | None:
        too_low = low is not None and (value <= low if low_open else value < low)
        too_high = high is not None and (value >= high if high_open else value > high)
        return f"{rule}, got {value:g}" if too_low or too_high else None

    return check


def _one_of(allowed: Iterable[Any] | Callable[[], Iterable[Any]]) -> Check:
    """Value must be one of ``allowed`` (a callable is asked only when a value is checked)."""

    def check(value: Any) -> str | None:
        choices = list(allowed() if callable(allowed) else allowed)
        if value in choices:
            return None
        close = _did_you_mean(value, choices) if isinstance(value, str) else ""
        return f"got {value!r}{close}; must be one of {', '.join(map(repr, choices))}"

    return check


def _did_you_mean(given: str, valid: Iterable[str]) -> str:
    close = difflib.get_close_matches(given, list(valid), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _eeg_unit(value: str) -> str | None:
    return None if unit_scale(value) is not None else f"{value!r} is not a unit of {UNIT_NAMES}"


def _high_pass(value: float) -> str | None:
    return None if value >= 0 else f"must be >= 0 Hz (0 = no high-pass), got {value:g}"


def _labels(value: tuple[str, ...]) -> str | None:
    if not value:
        return "an empty list would lock no window; leave the key out to lock on every marker"
    empty = [i for i, label in enumerate(value) if not label.strip()]
    return f"label {empty[0]} is empty" if empty else None


def _xdf_file(value: str) -> str | None:
    return None if value.lower().endswith(".xdf") else f"must name an .xdf file, got {value!r}"


def _builtin_montages() -> list[str]:
    import mne

    return list(mne.channels.get_builtin_montages())


# ---------------------------------------------------------------- the sections
@dataclass
class StreamConfig:
    """Which EEG stream to open and how to watch it.

    ``unit`` overrides the channel unit for streams whose metadata lacks or misstates it
    (None: trust the stream; a stream without a unit is then taken as microvolts, with a
    warning). ``rate_tolerance`` is the relative mismatch between the nominal rate and the
    rate measured from the timestamps above which the stream is flagged (0.02: 2 %).
    A sample is after a gap when it is later than the stream's sample-count timeline by
    more than ``gap_tolerance`` samples and ``max_jitter`` seconds (chunks stamped on
    arrival jitter by milliseconds without losing anything; see ``_inlet``).
    """

    name: str | None = None
    type: str | None = None
    source_id: str | None = None
    host: str | None = None
    unit: str | None = _setting(None, _eeg_unit)
    resolve_timeout: float = _setting(5.0, _within(0, low_open=True), "seconds")
    stall_timeout: float = _setting(1.0, _within(0, low_open=True), "seconds")
    gap_tolerance: float = _setting(4.0, _within(1), "samples")
    max_jitter: float = _setting(0.02, _within(0), "seconds")
    rate_tolerance: float = _setting(0.02, _within(0, 1, low_open=True, high_open=True),
                                     "fraction of the nominal rate")
    dejitter: bool = False
    buffer_seconds: float = _setting(30.0, _within(0, low_open=True), "seconds")


@dataclass
class MarkerConfig:
    """Optional marker stream (ERP windows, replay scoring); off when no name/id.

    Found by name whatever its type (``type`` only narrows the search): strings, or
    mne-lsl's annotations stream (``streamer._inlet.MarkerFormat``).
    """

    name: str | None = None
    type: str | None = None
    source_id: str | None = None
    # markers that lock a window (ERP mode); None = all
    labels: tuple[str, ...] | None = _setting(None, _labels)

    @property
    def enabled(self) -> bool:
        return self.name is not None or self.source_id is not None


@dataclass
class PreprocessingConfig:
    """Causal filters before resampling to 200 Hz.

    ``l_freq`` 0 turns the high-pass off (DC-coupled, for slow cortical potentials);
    any positive value below ``h_freq`` is a high-pass edge (0.01 Hz and up tested).
    ``notch`` filters ``line_freq`` and its harmonics. ``reference`` "average" subtracts
    the common average of the mapped EEG channels; "none" keeps the amplifier's reference.
    """

    line_freq: float = _setting(50.0, _one_of((50.0, 60.0)), "Hz")
    notch: bool = True
    l_freq: float = _setting(0.5, _high_pass, "Hz; 0 = no high-pass")
    # Below the Nyquist frequency of the 200 Hz model rate.
    h_freq: float = _setting(44.5, _within(0, 100, low_open=True, high_open=True), "Hz")
    reference: str = _setting("none", _one_of(("none", "average")))
    clip_uv: float = _setting(500.0, _within(0, low_open=True), "µV")


@dataclass
class QualityConfig:
    """When a channel is flagged, and when a window has too many flagged channels.

    A channel is flagged in a window when it held non-finite values, when its
    peak-to-peak is below ``flat_uv``, or when at least ``clipped_fraction`` of its
    samples sit at +-``preprocessing.clip_uv``. A window with a larger fraction of
    flagged channels than ``max_flagged_fraction`` is not classified and counts as
    rejected (1 never rejects; 0 rejects a window with any flagged channel).
    """

    flat_uv: float = _setting(1.0, _within(0), "µV peak-to-peak; 0 = never flat")
    clipped_fraction: float = _setting(0.01, _within(0, 1, low_open=True), "fraction of samples")
    max_flagged_fraction: float = _setting(0.25, _within(0, 1), "fraction of channels")


@dataclass
class WindowConfig:
    """Sliding windows every ``hop`` seconds, or windows locked to markers (ERP mode).

    Marker mode cuts ``marker_length`` seconds (whole 1 s patches; default ``n_patches``)
    starting ``marker_offset`` seconds after each marker.
    """

    n_patches: int = _setting(4, _within(1, 256), "1 s patches")
    hop: float = _setting(0.5, _within(0, low_open=True), "seconds")
    mode: str = _setting("sliding", _one_of(("sliding", "markers")))
    marker_offset: float = _setting(-0.2, _within(-60, 60), "seconds")
    marker_length: int | None = _setting(None, _within(1, 256), "seconds, whole 1 s patches")


@dataclass
class MappingConfig:
    """Montage for caps whose labels are not 10-20 (e.g. ``biosemi128``); None = by label."""

    montage: str | None = _setting(None, _one_of(_builtin_montages))


@dataclass
class ModelConfig:
    """Checkpoints to run (None: the shipped one; "none": no such model)."""

    tokenizer: str | None = None
    classifier: str | None = None
    watch_classifier: bool = True


@dataclass
class DecisionConfig:
    """When a classified window becomes a decision a closed loop may act on.

    A window whose highest calibrated probability is below ``min_confidence`` is published
    as "undecided" (its probabilities are still published); 0 decides every window.
    """

    min_confidence: float = _setting(0.0, _within(0, 1), "probability")


@dataclass
class BudgetConfig:
    """Per-stage latency budgets in ms.

    A window that waited so long that it can no longer meet ``end_to_end_ms`` is dropped
    before inference (a fresher one will); a window that ends up over any budget is still
    published, stamped, and counted as a deadline miss. Defaults suit the default 0.5 s hop
    on a CPU laptop: inference within one hop, a result within one second of its last
    sample.
    """

    preprocess_ms: float = _setting(50.0, _within(0, low_open=True), "ms")
    inference_ms: float = _setting(500.0, _within(0, low_open=True), "ms")
    end_to_end_ms: float = _setting(1000.0, _within(0, low_open=True), "ms")


@dataclass
class OutletConfig:
    """Which result streams to publish, and under which name and source_id.

    ``decisions`` is a string stream beside the predictions: per classified window its
    decision (a class, "undecided" or "rejected"), confidence, and the marker label and
    time of the trial it answers, so any LSL consumer can act on it and pair it with its
    trial.

    ``name``/``source_id`` None (default): derived from the input stream's name and
    source_id, so pipelines on one network stay apart and a restarted pipeline keeps its
    ids (consumers' ``recover`` reconnects to the right one).
    """

    predictions: bool = True
    decisions: bool = True
    tokens: bool = True
    reconstruction: bool = True
    metrics: bool = True
    name: str | None = None
    source_id: str | None = None


@dataclass
class RecordConfig:
    """Record the streams of the run to an XDF file; off when ``path`` is None.

    ``overwrite`` false (default) refuses to start when ``path`` exists, so nothing a
    user recorded is lost.
    """

    path: str | None = _setting(None, _xdf_file)
    overwrite: bool = False


@dataclass
class RunConfig:
    """Every setting of one pipeline run; checked as a whole when built (``ConfigError``)."""

    stream: StreamConfig = field(default_factory=StreamConfig)
    markers: MarkerConfig = field(default_factory=MarkerConfig)
    preprocessing: PreprocessingConfig = field(default_factory=PreprocessingConfig)
    quality: QualityConfig = field(default_factory=QualityConfig)
    windows: WindowConfig = field(default_factory=WindowConfig)
    mapping: MappingConfig = field(default_factory=MappingConfig)
    models: ModelConfig = field(default_factory=ModelConfig)
    engine: str = _setting("auto", _one_of(BACKENDS))
    # Re-centre the classifier's input on this session's own windows (decoders._adaptation).
    adapt: bool = False
    decisions: DecisionConfig = field(default_factory=DecisionConfig)
    budgets: BudgetConfig = field(default_factory=BudgetConfig)
    outlets: OutletConfig = field(default_factory=OutletConfig)
    record: RecordConfig = field(default_factory=RecordConfig)

    def __post_init__(self) -> None:
        problems, bad = _check_settings(self)
        problems += [p for p, uses in _contradictions(self) if not bad.intersection(uses)]
        if problems:
            raise ConfigError(problems)

    @property
    def window_seconds(self) -> int:
        """Length of one window: ``marker_length`` in marker mode when given, else n_patches."""
        w = self.windows
        if w.mode == "markers" and w.marker_length is not None:
            return w.marker_length
        return w.n_patches

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], source: str | None = None) -> RunConfig:
        """Build from nested mappings; every problem is collected into one ``ConfigError``.

        ``source`` (a file name, "command line") prefixes each problem.
        """
        problems: list[ConfigProblem] = []
        kwargs = _section_kwargs(cls, data, "", problems)
        try:
            config = cls(**kwargs)
        except ConfigError as err:
            problems += err.problems
        if problems:
            raise ConfigError(problems, source)
        return config

    @classmethod
    def from_file(cls, path: str | Path) -> RunConfig:
        """Load a ``.yaml``/``.yml`` or ``.toml`` file; a ``ConfigError`` names file:line."""
        path = Path(path)
        name = str(path)
        if path.is_dir():
            raise ConfigError([ConfigProblem("", "is a folder, not a config file")], name)
        if not path.is_file():
            raise ConfigError([ConfigProblem("", "config file does not exist")], name)
        if path.suffix.lower() not in (".yaml", ".yml", ".toml"):
            raise ConfigError(
                [ConfigProblem("", "use a .yaml, .yml or .toml file for the configuration")], name
            )
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            raise ConfigError([ConfigProblem("", "is not a UTF-8 text file")], name) from None
        if path.suffix.lower() == ".toml":
            data, lines = _parse_toml(text, name), {}
        else:
            data, lines = _parse_yaml(text, name)
        if not isinstance(data, Mapping):
            raise ConfigError([ConfigProblem(
                "", f"must hold a mapping of sections at the top level, got {_kind(data)}", 1
            )], name)
        try:
            return cls.from_dict(data)
        except ConfigError as err:
            located = [dataclasses.replace(p, line=_line_of(p.key, lines)) for p in err.problems]
            # File order; problems without a line (defaults that clash) last, in data flow.
            located.sort(key=lambda p: (p.line is None, p.line or 0))
            raise ConfigError(located, name) from None

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def override(self, **dotted: Any) -> RunConfig:
        """A copy with ``section.key=value`` overrides (CLI flags); ``None`` values skipped.

        The result is checked like a file; problems are reported as from the command line.
        """
        data = self.to_dict()
        problems: list[ConfigProblem] = []
        for key, value in dotted.items():
            if value is None:
                continue
            *sections, leaf = key.replace("__", ".").split(".")
            node: dict[str, Any] = data
            for depth, part in enumerate(sections):
                if not isinstance(node.get(part), dict):
                    where = ".".join(sections[:depth + 1])
                    problems.append(ConfigProblem(key, f"{where!r} is not a config section"))
                    break
                node = node[part]
            else:
                if leaf in node:
                    node[leaf] = value
                else:
                    problems.append(_unknown_key(key, leaf, node))
        try:
            config = RunConfig.from_dict(data)
        except ConfigError as err:
            problems += err.problems
        if problems:
            raise ConfigError(problems, "command line")
        return config

    def tokenizer_path(self) -> Path:
        return _model_path(self.models.tokenizer, "tokenizer")

    def classifier_path(self) -> Path | None:
        """The classifier file to run (``decoders.default_decoder`` when none is given);
        None (tokens only) for "none", or when none is given and none is shipped."""
        if self.models.classifier == "none":
            return None
        if self.models.classifier is not None:
            return _model_path(self.models.classifier, "classifier")
        from neurorvq_stream.decoders import default_decoder

        shipped = default_decoder()
        if shipped is None:
            logger.warning("No classifier given or shipped: tokens only, no predictions.")
        return shipped


# ---------------------------------------------------------------- checking
def _is_section(f: dataclasses.Field) -> bool:
    return dataclasses.is_dataclass(f.default_factory)


@functools.cache
def _type_hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _settings(config: RunConfig) -> Iterator[tuple[str, object, dataclasses.Field]]:
    """Every leaf setting as (key path, the object holding it, its field)."""
    for f in dataclasses.fields(config):
        if _is_section(f):
            section = getattr(config, f.name)
            for g in dataclasses.fields(section):
                yield f"{f.name}.{g.name}", section, g
        else:
            yield f.name, config, f


def _check_settings(config: RunConfig) -> tuple[list[ConfigProblem], set[str]]:
    """Type and value problems of every setting; well-typed values are normalised in place."""
    problems: list[ConfigProblem] = []
    for f in dataclasses.fields(config):
        section = getattr(config, f.name)
        if _is_section(f) and not isinstance(section, f.default_factory):
            problems.append(ConfigProblem(
                f.name, f"must be a {f.default_factory.__name__}, got {_kind(section)}"))
            setattr(config, f.name, f.default_factory())
    for key, owner, f in _settings(config):
        hint = _type_hints(type(owner))[f.name]
        value, problem = _typed(getattr(owner, f.name), hint, f.metadata.get("unit", ""))
        check = f.metadata.get("check")
        if problem is None and value is not None and check is not None:
            problem = check(value)
        # A bad value is reported and replaced by the default, so later checks can run.
        setattr(owner, f.name, value if problem is None else f.default)
        if problem is not None:
            problems.append(ConfigProblem(key, problem))
    return problems, {p.key for p in problems}


def _contradictions(config: RunConfig) -> list[tuple[ConfigProblem, tuple[str, ...]]]:
    """Settings that are fine alone but not together, each with the keys it depends on."""
    s, w, p = config.stream, config.windows, config.preprocessing
    found = []
    if w.hop > w.n_patches:
        found.append((ConfigProblem(
            "windows.hop", f"must be at most the window length windows.n_patches "
                           f"({w.n_patches} s), got {w.hop:g}"),
            ("windows.hop", "windows.n_patches")))
    if w.mode == "markers" and not config.markers.enabled:
        found.append((ConfigProblem(
            "windows.mode", "'markers' needs markers.name or markers.source_id (the marker "
                            "stream whose markers lock the windows)"),
            ("windows.mode", "markers.name", "markers.source_id")))
    if p.l_freq >= p.h_freq:
        found.append((ConfigProblem(
            "preprocessing.l_freq", f"must be below preprocessing.h_freq ({p.h_freq:g} Hz), "
                                    f"got {p.l_freq:g} (0 = no high-pass)"),
            ("preprocessing.l_freq", "preprocessing.h_freq")))
    if s.buffer_seconds <= config.window_seconds:
        found.append((ConfigProblem(
            "stream.buffer_seconds", f"must be longer than one window ({config.window_seconds}"
                                     f" s), got {s.buffer_seconds:g}"),
            ("stream.buffer_seconds", "windows.n_patches", "windows.marker_length",
             "windows.mode")))
    return found


def _typed(value: Any, hint: Any, unit: str = "") -> tuple[Any, str | None]:
    """``value`` as the type ``hint`` asks for, or why it is not (``unit`` for numbers)."""
    args = typing.get_args(hint)
    if type(None) in args:
        if value is None:
            return None, None
        (hint,) = [a for a in args if a is not type(None)]
        optional = True
    else:
        optional = False
    if hint is bool and isinstance(value, bool):
        return value, None
    if hint is int and _is_number(value) and float(value).is_integer():
        return int(value), None
    if hint is float and _is_number(value) and math.isfinite(value):
        return float(value), None
    if hint is str and isinstance(value, str):
        if value.strip():
            return value, None
        return value, "is empty" + ("; give a value, or leave it out for none" if optional else "")
    if (typing.get_origin(hint) is tuple and isinstance(value, list | tuple)
            and all(isinstance(v, str) for v in value)):
        return tuple(value), None
    expected = _EXPECTED[typing.get_origin(hint) or hint]
    if unit:
        expected += f" ({unit})"
    if optional:
        expected += " or null"
    return value, (f"expected {expected}, got {_shown(value)} ({_kind(value)})"
                   f"{_hint(value, hint, unit)}")


_EXPECTED = {bool: "true or false", int: "a whole number", float: "a number", str: "a string",
             tuple: "a list of strings"}


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    kinds = {float: "a number", str: "a string", list: "a list", dict: "a mapping"}
    return next((k for t, k in kinds.items() if isinstance(value, t)), type(value).__name__)


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


_NUMBER = r"\s*[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?"


def _hint(value: Any, hint: Any, unit: str) -> str:
    """What to write instead, for the mistakes people make."""
    if isinstance(value, str) and hint in (int, float):
        if re.fullmatch(_NUMBER + r"\s*", value):
            return f"; write {value.strip()} without quotes"
        if re.match(_NUMBER, value):
            return f"; write a plain number{', in ' + unit.split(';')[0] if unit else ''}"
        return ""
    if isinstance(value, str) and hint is bool:
        return "; write true or false without quotes"
    if hint is str and _is_number(value):
        return f"; quote it: '{value}'"
    if hint is str and isinstance(value, bool):
        return "; YAML reads yes/no/on/off/true/false as a boolean: quote the text"
    if isinstance(value, str) and typing.get_origin(hint) is tuple:
        return f"; write [{value}] for a single one"
    if value is None and hint is float:
        return "; leave the key out for the default"
    return ""


def _section_kwargs(cls: type, data: Any, prefix: str,
                    problems: list[ConfigProblem]) -> dict[str, Any]:
    """Keyword arguments for ``cls`` from a mapping; sections are built, leaves kept as given."""
    fields = {f.name: f for f in dataclasses.fields(cls)}
    kwargs: dict[str, Any] = {}
    for raw_key, value in data.items():
        key = str(raw_key)
        path = prefix + key
        f = fields.get(key)
        if f is None:
            problems.append(_unknown_key(path, key, fields))
        elif not _is_section(f):
            kwargs[key] = value
        elif value is None:  # a section header with nothing under it
            kwargs[key] = f.default_factory()
        elif isinstance(value, Mapping):
            kwargs[key] = f.default_factory(
                **_section_kwargs(f.default_factory, value, path + ".", problems))
        else:
            problems.append(ConfigProblem(
                path, f"must be a section (key: value lines under it), got {_shown(value)} "
                      f"({_kind(value)})"))
    return kwargs


def _unknown_key(path: str, key: str, valid: Iterable[str]) -> ConfigProblem:
    section = path.rpartition(".")[0]
    return ConfigProblem(
        path, f"unknown key{_did_you_mean(key, valid)}; valid keys"
              f"{' in ' + section if section else ''}: {', '.join(sorted(valid))}")


# ---------------------------------------------------------------- parsing
def _parse_yaml(text: str, name: str) -> tuple[Any, dict[str, int]]:
    """The document and the line of every key path; syntax errors and repeated keys raise."""
    import yaml

    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        data = loader.construct_document(node) if node is not None else {}
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        line = mark.line + 1 if mark is not None else None
        column = f"column {mark.column + 1}; " if mark is not None else ""
        raise ConfigError([ConfigProblem(
            "", f"not valid YAML: {err.problem or err.context} ({column}check the indentation, "
                "brackets and quotes here and on the lines above)", line)], name) from None
    except yaml.YAMLError as err:
        raise ConfigError([ConfigProblem("", f"not valid YAML: {err}")], name) from None
    finally:
        loader.dispose()
    lines: dict[str, int] = {}
    repeated: list[ConfigProblem] = []
    if isinstance(node, yaml.MappingNode):
        _key_lines(node, "", lines, repeated)
    if repeated:
        raise ConfigError(repeated, name)
    return data, lines


def _key_lines(node: Any, prefix: str, lines: dict[str, int],
               repeated: list[ConfigProblem]) -> None:
    import yaml

    for key_node, value_node in node.value:
        path = prefix + str(key_node.value)
        line = key_node.start_mark.line + 1
        if path in lines:
            repeated.append(ConfigProblem(
                path, f"given twice (also on line {lines[path]}); keep one", line))
        lines[path] = line
        if isinstance(value_node, yaml.MappingNode):
            _key_lines(value_node, path + ".", lines, repeated)


def _parse_toml(text: str, name: str) -> dict[str, Any]:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        message = str(err)
        at = re.search(r" \(at line (\d+), column (\d+)\)$", message)
        line = int(at.group(1)) if at else None
        if at:
            message = f"{message[:at.start()]} (column {at.group(2)})"
        raise ConfigError([ConfigProblem("", f"not valid TOML: {message}", line)], name) from None


def _line_of(key: str, lines: Mapping[str, int]) -> int | None:
    """Line of ``key`` in the file, else of the nearest section above it that is there."""
    while key:
        if key in lines:
            return lines[key]
        key = key.rpartition(".")[0]
    return None


def _model_path(given: str | None, kind: str) -> Path:
    """The given checkpoint, or the shipped one in ``models/``; a clear error otherwise.

    Which shipped file is the default is ``engines.shipped_model``'s rule.
    """
    if given is not None:
        path = Path(given).expanduser()
        if not path.is_file():
            raise FileNotFoundError(f"The {kind} checkpoint {str(path)!r} does not exist.")
        return path
    from neurorvq_stream.engines import shipped_model
    from neurorvq_stream.engines._checkpoint import shipped_models_dir

    shipped = shipped_model(kind)
    if shipped is None:
        raise FileNotFoundError(
            f"No {kind} given and none shipped in {shipped_models_dir()}; pass --{kind} PATH "
            f"(a .pt or .safetensors checkpoint)."
        )
    return shipped
