"""One object describes a run: ``RunConfig``, loaded from YAML or TOML, overridden by flags.

Sections mirror the data flow (stream -> markers -> preprocessing -> windows -> mapping
-> models/engine -> budgets -> outlets), so a config file reads like the pipeline.
"""

from __future__ import annotations

import dataclasses
import logging
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

logger = logging.getLogger("neurorvq_stream")


@dataclass
class StreamConfig:
    """Which EEG stream to open and how to watch it."""

    name: str | None = None
    type: str | None = None
    source_id: str | None = None
    host: str | None = None
    resolve_timeout: float = 5.0
    stall_timeout: float = 1.0
    gap_tolerance: float = 4.0
    dejitter: bool = False
    buffer_seconds: float = 30.0
    unit: str | None = None  # overrides the channel unit the stream declares (V, mV, uV)
    rate_tolerance: float = 0.05  # relative arrival-rate mismatch that flags the stream


@dataclass
class MarkerConfig:
    """Optional string-marker stream (ERP windows, replay scoring); off when no name/id."""

    name: str | None = None
    type: str | None = "Markers"
    source_id: str | None = None
    labels: list[str] | None = None  # markers that lock a window (ERP mode); None = all

    @property
    def enabled(self) -> bool:
        return self.name is not None or self.source_id is not None


@dataclass
class PreprocessingConfig:
    line_freq: float = 50.0
    notch: bool = True
    l_freq: float | None = 0.5  # None: no high-pass (slow cortical potentials)
    h_freq: float = 44.5
    clip_uv: float = 500.0
    reference: str = "none"  # or "average": common average over the mapped channels


@dataclass
class WindowConfig:
    """Sliding windows every ``hop`` seconds, or windows locked to markers (ERP mode).

    Marker mode cuts ``marker_length`` seconds (whole 1 s patches; default ``n_patches``)
    starting ``marker_offset`` seconds after each marker.
    """

    n_patches: int = 4
    hop: float = 0.5
    mode: str = "sliding"
    marker_offset: float = -0.2
    marker_length: float | None = None


@dataclass
class MappingConfig:
    """Montage for caps whose labels are not 10-20 (e.g. ``biosemi128``); None = by label."""

    montage: str | None = None


@dataclass
class ModelConfig:
    tokenizer: str | None = None
    classifier: str | None = None
    watch_classifier: bool = True


@dataclass
class BudgetConfig:
    """Per-stage latency budgets in ms; a window that cannot meet them is dropped.

    Defaults suit the default 0.5 s hop on a CPU laptop: inference within one hop, a
    result within one second of its last sample.
    """

    preprocess_ms: float = 50.0
    inference_ms: float = 500.0
    end_to_end_ms: float = 1000.0


@dataclass
class OutletConfig:
    predictions: bool = True
    tokens: bool = True
    reconstruction: bool = True
    metrics: bool = True
    name: str | None = None  # stream name prefix; None: "<input stream>-NeuroRVQ"
    source_id: str | None = None  # source_id prefix; None: "<input source_id>-neurorvq"


@dataclass
class QualityConfig:
    """When a channel of a window is flagged, and when a window is too bad to classify."""

    flat_uv: float = 0.5
    max_flagged_fraction: float = 0.25


@dataclass
class RunConfig:
    """Every setting of one pipeline run."""

    stream: StreamConfig = field(default_factory=StreamConfig)
    markers: MarkerConfig = field(default_factory=MarkerConfig)
    preprocessing: PreprocessingConfig = field(default_factory=PreprocessingConfig)
    windows: WindowConfig = field(default_factory=WindowConfig)
    mapping: MappingConfig = field(default_factory=MappingConfig)
    models: ModelConfig = field(default_factory=ModelConfig)
    engine: str = "auto"
    budgets: BudgetConfig = field(default_factory=BudgetConfig)
    quality: QualityConfig = field(default_factory=QualityConfig)
    outlets: OutletConfig = field(default_factory=OutletConfig)

    def __post_init__(self) -> None:
        w = self.windows
        if not 1 <= w.n_patches <= 256:
            raise ValueError(f"windows.n_patches must be within 1..256, got {w.n_patches}.")
        if not 0 < w.hop <= w.n_patches:
            raise ValueError(
                f"windows.hop must be > 0 and at most the window ({w.n_patches} s), got {w.hop}."
            )
        if w.mode not in ("sliding", "markers"):
            raise ValueError(f"windows.mode must be 'sliding' or 'markers', got {w.mode!r}.")
        if w.mode == "markers" and not self.markers.enabled:
            raise ValueError("windows.mode='markers' needs markers.name or markers.source_id.")
        if self.preprocessing.line_freq not in (50.0, 60.0):
            raise ValueError(
                f"preprocessing.line_freq must be 50 or 60 Hz, got {self.preprocessing.line_freq}."
            )

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunConfig:
        """Build from nested dicts; unknown keys are an error naming the valid ones."""
        return _build(cls, data, "")

    @classmethod
    def from_file(cls, path: str | Path) -> RunConfig:
        """Load a ``.yaml``/``.yml`` or ``.toml`` file."""
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"Config file {str(path)!r} does not exist.")
        if path.suffix in (".yaml", ".yml"):
            import yaml

            data = yaml.safe_load(path.read_text()) or {}
        elif path.suffix == ".toml":
            data = tomllib.loads(path.read_text())
        else:
            raise ValueError(f"Config {str(path)!r}: use a .yaml, .yml or .toml file.")
        if not isinstance(data, dict):
            raise ValueError(f"Config {str(path)!r} must hold a mapping at the top level.")
        return cls.from_dict(data)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def override(self, **dotted: Any) -> RunConfig:
        """A copy with ``section.key=value`` overrides (CLI flags); ``None`` values skipped."""
        data = self.to_dict()
        for key, value in dotted.items():
            if value is None:
                continue
            parts = key.replace("__", ".").split(".")
            node = data
            for part in parts[:-1]:
                if not isinstance(node.get(part), dict):
                    raise KeyError(f"Override {key!r}: {part!r} is not a config section.")
                node = node[part]
            if parts[-1] not in node:
                raise KeyError(
                    f"Override {key!r}: unknown key {parts[-1]!r}; valid: {sorted(node)}."
                )
            node[parts[-1]] = value
        return RunConfig.from_dict(data)

    def tokenizer_path(self) -> Path:
        return _model_path(self.models.tokenizer, "tokenizer")

    def classifier_path(self) -> Path | None:
        """The classifier to run; None (tokens only) when none is given and none is shipped."""
        if self.models.classifier == "none":
            return None
        try:
            return _model_path(self.models.classifier, "classifier")
        except FileNotFoundError:
            if self.models.classifier is not None:
                raise
            logger.warning("No classifier given or shipped: tokens only, no predictions.")
            return None


def _build(cls: type, data: dict[str, Any], where: str) -> Any:
    if not isinstance(data, dict):
        raise TypeError(f"Config section {where or 'top level'!r} must be a mapping.")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise KeyError(
            f"Unknown config key(s) {[f'{where}{k}' for k in unknown]}; "
            f"valid keys{' in ' + where.rstrip('.') if where else ''}: {sorted(fields)}."
        )
    kwargs = {}
    for name, value in data.items():
        default = fields[name].default_factory  # type: ignore[misc]
        if dataclasses.is_dataclass(default):
            kwargs[name] = _build(default, value or {}, f"{where}{name}.")
        else:
            kwargs[name] = value
    return cls(**kwargs)


def _model_path(given: str | None, kind: str) -> Path:
    """The given checkpoint, or the shipped one in ``models/``; a clear error otherwise.

    Which shipped file is the default is ``engines.shipped_model``'s rule.
    """
    if given is not None:
        path = Path(given).expanduser()
        if not path.is_file():
            raise FileNotFoundError(f"The {kind} checkpoint {str(path)!r} does not exist.")
        return path
    from neurorvq_stream.engines import shipped_model, shipped_models_dir

    shipped = shipped_model(kind)
    if shipped is None:
        raise FileNotFoundError(
            f"No {kind} given and none shipped in {shipped_models_dir()}; pass --{kind} PATH "
            f"(a .pt or .safetensors checkpoint)."
        )
    return shipped
