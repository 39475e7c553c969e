"""One object describes a run: ``RunConfig``, loaded from YAML or TOML, overridden by flags.

Sections mirror the data flow (stream -> markers -> preprocessing -> quality -> windows ->
mapping -> models/engine -> decisions -> budgets -> outlets -> record), so a config file
reads like the pipeline.

Every setting declares its type, unit and the values it may take in its annotation
(strict pydantic models, ``engines._schema``; the ``preprocessing`` section is the
``engines.Preprocessing`` a decoder's window spec holds too). A configuration is checked
as a whole whenever it is built (from a file, from flags through ``override``, or in
code): unknown keys, sections that are not mappings, wrong types, values out of range and
settings that contradict each other are collected and raised together as one
:class:`ConfigError`, one line per problem naming the file (and line, where the parser
knows it), the key path and what was expected, so a user fixes a file in one go. Values
are never converted from strings: ``hop: "0.5"`` is an error, not 0.5, so ``tokens:
"no"`` can never quietly mean true.
"""

from __future__ import annotations

import logging
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any

from pydantic import Field, model_validator

from neurorvq_stream.engines._schema import (
    Names,
    Problem,
    Schema,
    SchemaError,
    Text,
    Unit,
    Whole,
    check,
    clashes,
    did_you_mean,
    kind_of,
    one_of,
)
from neurorvq_stream.engines._spec import Preprocessing, Window
from neurorvq_stream.engines.backends import BACKENDS

from ._preprocessing import UNIT_NAMES, unit_scale

logger = logging.getLogger("neurorvq_stream")


class ConfigError(SchemaError):
    """Everything wrong with one configuration; ``str()`` is ready to print, one line each."""

    document = "configuration"


class _Section(Schema):
    error = ConfigError


def _eeg_unit(value: str) -> str | None:
    return None if unit_scale(value) is not None else f"{value!r} is not a unit of {UNIT_NAMES}"


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


Seconds = Annotated[float, Unit("seconds"), Field(gt=0)]
Ms = Annotated[float, Unit("ms"), Field(gt=0)]


# ---------------------------------------------------------------- the sections
class StreamConfig(_Section):
    """Which EEG stream to open and how to watch it.

    ``unit`` overrides the channel unit for streams whose metadata lacks or misstates it
    (None: trust the stream; a stream without a unit is then taken as microvolts, with a
    warning). ``rate_tolerance`` is the relative mismatch between the nominal rate and the
    rate measured from the timestamps above which the stream is flagged (0.02: 2 %).
    A sample is after a gap when it is later than the stream's sample-count timeline by
    more than ``gap_tolerance`` samples and ``max_jitter`` seconds (chunks stamped on
    arrival jitter by milliseconds without losing anything; see ``_inlet``).
    """

    name: Text | None = None
    type: Text | None = None
    source_id: Text | None = None
    host: Text | None = None
    unit: Annotated[Text, check(_eeg_unit)] | None = None
    resolve_timeout: Seconds = 5.0
    stall_timeout: Seconds = 1.0
    gap_tolerance: Annotated[float, Unit("samples"), Field(ge=1)] = 4.0
    max_jitter: Annotated[float, Unit("seconds"), Field(ge=0)] = 0.02
    rate_tolerance: Annotated[float, Unit("fraction of the nominal rate"),
                              Field(gt=0, lt=1)] = 0.02
    dejitter: bool = False
    buffer_seconds: Seconds = 30.0


class MarkerConfig(_Section):
    """Optional marker stream (ERP windows, replay scoring); off when no name/id.

    Found by name whatever its type (``type`` only narrows the search): strings, or
    mne-lsl's annotations stream (``streamer._inlet.MarkerFormat``).
    """

    name: Text | None = None
    type: Text | None = None
    source_id: Text | None = None
    # markers that lock a window (ERP mode); None = all
    labels: Annotated[Names, check(_labels)] | None = None

    @property
    def enabled(self) -> bool:
        return self.name is not None or self.source_id is not None


class QualityConfig(_Section):
    """When a channel is flagged, and when a window has too many flagged channels.

    A channel is flagged in a window when it held non-finite values, when its
    peak-to-peak is below ``flat_uv``, or when at least ``clipped_fraction`` of its
    samples sit at +-``preprocessing.clip_uv``. A window with a larger fraction of
    flagged channels than ``max_flagged_fraction`` is not classified and counts as
    rejected (1 never rejects; 0 rejects a window with any flagged channel).
    """

    flat_uv: Annotated[float, Unit("µV peak-to-peak; 0 = never flat"), Field(ge=0)] = 1.0
    clipped_fraction: Annotated[float, Unit("fraction of samples"), Field(gt=0, le=1)] = 0.01
    max_flagged_fraction: Annotated[float, Unit("fraction of channels"),
                                    Field(ge=0, le=1)] = 0.25


class WindowConfig(Window):
    """The run's windows (``engines.Window``), one every ``hop`` seconds when sliding.

    ``marker_length`` (whole seconds) sets the window in marker mode, so one file can say
    both a sliding and an ERP window; ``cut`` is the window the run takes.
    """

    error = ConfigError

    hop: Seconds = 0.5
    marker_length: Annotated[Whole, Unit("seconds, whole 1 s patches"),
                             Field(ge=1, le=256)] | None = None

    @model_validator(mode="after")
    def _hop_within_window(self) -> WindowConfig:
        if self.hop > self.n_patches:
            clashes([("hop", f"must be at most the window length windows.n_patches "
                             f"({self.n_patches} s), got {self.hop:g}")])
        return self

    @property
    def cut(self) -> Window:
        """The window this run takes: ``marker_length`` long in marker mode when given."""
        if self.mode == "markers" and self.marker_length is not None:
            return Window(mode=self.mode, n_patches=self.marker_length,
                          marker_offset=self.marker_offset)
        return super().cut


class MappingConfig(_Section):
    """Montage for caps whose labels are not 10-20 (e.g. ``biosemi128``); None = by label."""

    montage: Annotated[str, one_of(_builtin_montages)] | None = None


class ModelConfig(_Section):
    """Checkpoints to run (None: the shipped one; "none": no such model)."""

    tokenizer: Text | None = None
    classifier: Text | None = None
    watch_classifier: bool = True


class DecisionConfig(_Section):
    """When a classified window becomes a decision a closed loop may act on.

    A window whose highest calibrated probability is below ``min_confidence`` is published
    as "undecided" (its probabilities are still published); 0 decides every window.
    """

    min_confidence: Annotated[float, Unit("probability"), Field(ge=0, le=1)] = 0.0


class BudgetConfig(_Section):
    """Per-stage latency budgets in ms.

    A window that waited so long that it can no longer meet ``end_to_end_ms`` is dropped
    before inference (a fresher one will); a window that ends up over any budget is still
    published, stamped, and counted as a deadline miss. Defaults suit the default 0.5 s hop
    on a CPU laptop: inference within one hop, a result within one second of its last
    sample.
    """

    preprocess_ms: Ms = 50.0
    inference_ms: Ms = 500.0
    end_to_end_ms: Ms = 1000.0


class OutletConfig(_Section):
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
    name: Text | None = None
    source_id: Text | None = None


class RecordConfig(_Section):
    """Record the streams of the run to an XDF file; off when ``path`` is None.

    ``overwrite`` false (default) refuses to start when ``path`` exists, so nothing a
    user recorded is lost.
    """

    path: Annotated[Text, check(_xdf_file)] | None = None
    overwrite: bool = False


class RunConfig(_Section):
    """Every setting of one pipeline run; checked as a whole when built (``ConfigError``)."""

    stream: StreamConfig = StreamConfig()
    markers: MarkerConfig = MarkerConfig()
    preprocessing: Preprocessing = Preprocessing()
    quality: QualityConfig = QualityConfig()
    windows: WindowConfig = WindowConfig()
    mapping: MappingConfig = MappingConfig()
    models: ModelConfig = ModelConfig()
    engine: Annotated[str, one_of(BACKENDS)] = "auto"
    # Re-centre the classifier's input on this session's own windows (decoders._adaptation).
    adapt: bool = False
    decisions: DecisionConfig = DecisionConfig()
    budgets: BudgetConfig = BudgetConfig()
    outlets: OutletConfig = OutletConfig()
    record: RecordConfig = RecordConfig()

    @model_validator(mode="before")
    @classmethod
    def _empty_sections(cls, data: Any) -> Any:
        """A section header with nothing under it means that section's defaults."""
        if not isinstance(data, Mapping):
            return data
        return {k: v for k, v in data.items()
                if not (v is None and k in cls.model_fields
                        and isinstance(cls.model_fields[k].default, Schema))}

    @model_validator(mode="after")
    def _contradictions(self) -> RunConfig:
        found = []
        if self.windows.mode == "markers" and not self.markers.enabled:
            found.append(("windows.mode", "'markers' needs markers.name or markers.source_id "
                                          "(the marker stream whose markers lock the windows)"))
        window_s = self.windows.cut.n_patches
        if self.stream.buffer_seconds <= window_s:
            found.append(("stream.buffer_seconds", f"must be longer than one window "
                                                   f"({window_s} s), got "
                                                   f"{self.stream.buffer_seconds:g}"))
        clashes(found)
        return self

    @classmethod
    def from_file(cls, path: str | Path) -> RunConfig:
        """Load a ``.yaml``/``.yml`` or ``.toml`` file; a ``ConfigError`` names file:line."""
        path = Path(path)
        name = str(path)
        if path.is_dir():
            raise ConfigError([Problem("", "is a folder, not a config file")], name)
        if not path.is_file():
            raise ConfigError([Problem("", "config file does not exist")], name)
        if path.suffix.lower() not in (".yaml", ".yml", ".toml"):
            raise ConfigError(
                [Problem("", "use a .yaml, .yml or .toml file for the configuration")], name
            )
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            raise ConfigError([Problem("", "is not a UTF-8 text file")], name) from None
        if path.suffix.lower() == ".toml":
            data, lines = _parse_toml(text, name), {}
        else:
            data, lines = _parse_yaml(text, name)
        if not isinstance(data, Mapping):
            raise ConfigError([Problem(
                "", f"must hold a mapping of sections at the top level, got {kind_of(data)}", 1
            )], name)
        try:
            return cls.from_dict(data)
        except ConfigError as err:
            located = [Problem(p.key, p.message, _line_of(p.key, lines)) for p in err.problems]
            # File order; problems without a line (defaults that clash) last, in data flow.
            located.sort(key=lambda p: (p.line is None, p.line or 0))
            raise ConfigError(located, name) from None

    def override(self, **dotted: Any) -> RunConfig:
        """A copy with ``section.key=value`` overrides (CLI flags); ``None`` values skipped.

        The result is checked like a file; problems are reported as from the command line.
        """
        data = self.model_dump()
        problems: list[Problem] = []
        for key, value in dotted.items():
            if value is None:
                continue
            *sections, leaf = key.replace("__", ".").split(".")
            node: dict[str, Any] = data
            for depth, part in enumerate(sections):
                if not isinstance(node.get(part), dict):
                    where = ".".join(sections[:depth + 1])
                    problems.append(Problem(key, f"{where!r} is not a config section"))
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



def _unknown_key(path: str, key: str, valid: Mapping[str, Any]) -> Problem:
    section = path.rpartition(".")[0]
    return Problem(
        path, f"unknown key{did_you_mean(key, valid)}; valid keys"
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
        raise ConfigError([Problem(
            "", f"not valid YAML: {err.problem or err.context} ({column}check the indentation, "
                "brackets and quotes here and on the lines above)", line)], name) from None
    except yaml.YAMLError as err:
        raise ConfigError([Problem("", f"not valid YAML: {err}")], name) from None
    finally:
        loader.dispose()
    lines: dict[str, int] = {}
    repeated: list[Problem] = []
    if isinstance(node, yaml.MappingNode):
        _key_lines(node, "", lines, repeated)
    if repeated:
        raise ConfigError(repeated, name)
    return data, lines


def _key_lines(node: Any, prefix: str, lines: dict[str, int],
               repeated: list[Problem]) -> None:
    import yaml

    for key_node, value_node in node.value:
        path = prefix + str(key_node.value)
        line = key_node.start_mark.line + 1
        if path in lines:
            repeated.append(Problem(
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
        raise ConfigError([Problem("", f"not valid TOML: {message}", line)], name) from None


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
