"""Read a recorded session (XDF) and find the pipeline's streams by type and metadata.

Nothing is found by a fixed stream name: the pipeline's outlets are the streams whose
header carries ``desc/neurorvq`` (their type says which one; the reconstruction is typed
``Reconstruction``, or ``EEG`` in recordings made before that type existed), the amplifier's
stream is the one their ``source_stream`` names (else the biggest regular numeric stream
that is not ours), and markers are the string streams (or irregular ``Markers`` streams).
Metrics channels are read by label, so extra or missing ones are tolerated; what the bits
of its ``flags_<channel>`` bitmasks mean is read from its ``desc/flags``. A run whose
classifier was swapped for one with other classes has a predictions stream per class set
(``...-predictions``, ``...-predictions-2``, ...): all of them are kept.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

logger = logging.getLogger("neurorvq_stream")

OUTPUT_TYPES = {"predictions": ("predictions",), "decisions": ("decisions",),
                "tokens": ("tokens",),
                "metrics": ("metrics",), "reconstruction": ("reconstruction", "eeg")}


@dataclass
class Stream:
    """One recorded stream: samples ``(n, C)`` at LSL times ``(n,)`` and its header."""

    name: str
    type: str
    source_id: str
    srate: float
    labels: list[str]
    units: list[str]
    times: np.ndarray
    data: np.ndarray
    meta: dict[str, str] = field(default_factory=dict)
    layout: dict[str, str] = field(default_factory=dict)
    #: Flag name -> bit of the ``flags_<channel>`` bitmasks (the metrics' ``desc/flags``).
    flag_bits: dict[str, int] = field(default_factory=dict)

    def channel(self, label: str) -> np.ndarray | None:
        """Samples of the channel labelled ``label`` (None when the stream has none)."""
        return self.data[:, self.labels.index(label)] if label in self.labels else None

    @property
    def is_output(self) -> bool:
        return bool(self.meta)


@dataclass
class Session:
    """What a report needs from one recording; any part may be missing (None / empty)."""

    path: Path
    streams: list[Stream]
    eeg: Stream | None
    markers: list[tuple[float, str]]
    #: Every predictions stream, in the order they began publishing (one per class set).
    predictions: list[Stream] = field(default_factory=list)
    decisions: Stream | None = None
    tokens: Stream | None = None
    reconstruction: Stream | None = None
    metrics: Stream | None = None

    @property
    def meta(self) -> dict[str, str]:
        """The pipeline's ``desc/neurorvq`` (from the first outlet recorded)."""
        for s in (self.metrics, *self.predictions, self.tokens, self.reconstruction):
            if s is not None:
                return s.meta
        return {}

    @property
    def mapping(self) -> list[tuple[str, str]]:
        """(stream channel, NeuroRVQ electrode) pairs the pipeline published, in order."""
        pairs = self.meta.get("mapping", "").split(",")
        return [tuple(p.split(":", 1)) for p in pairs if ":" in p]

    @property
    def t0(self) -> float:
        """Time zero of every figure: the first recorded sample of the EEG (or of anything)."""
        if self.eeg is not None and len(self.eeg.times):
            return float(self.eeg.times[0])
        firsts = [s.times[0] for s in self.streams if len(s.times)]
        return float(min(firsts)) if firsts else 0.0

    @property
    def window_seconds(self) -> float:
        """Length of the run's windows (1 s patches), as its outlets' metadata says
        (recordings of 0.2.0 say it in the tokens layout only)."""
        if "n_patches" in self.meta:
            return float(self.meta["n_patches"])
        if self.tokens is not None and "n_patches" in self.tokens.layout:
            return float(self.tokens.layout["n_patches"])
        return 1.0


def _first(node: object, key: str, default: object = None) -> object:
    value = (node or {}).get(key) if isinstance(node, dict) else None
    return value[0] if value else default


def _flat(node: object) -> dict[str, str]:
    """A ``desc`` sub-node of single text values as a plain dict."""
    if not isinstance(node, dict):
        return {}
    return {k: str(v[0]) for k, v in node.items() if v and isinstance(v[0], str)}


def _stream(raw: dict) -> Stream:
    info = raw["info"]
    desc = _first(info, "desc") or {}
    channel_node = _first(desc, "channels")
    channels = channel_node.get("channel", []) if isinstance(channel_node, dict) else []
    n_ch = int(_first(info, "channel_count", 0))
    labels = [str(_first(ch, "label", f"ch{k + 1}")) for k, ch in enumerate(channels)][:n_ch]
    units = [str(_first(ch, "unit", "")) for ch in channels][:n_ch]
    labels += [f"ch{k + 1}" for k in range(len(labels), n_ch)]
    units += [""] * (n_ch - len(units))
    fmt = _first(info, "channel_format", "float32")
    series = raw["time_series"]
    if fmt == "string":
        data = np.asarray(series, dtype=object).reshape(-1, n_ch)
    else:
        data = np.asarray(series).reshape(-1, n_ch)
    return Stream(
        name=str(_first(info, "name", "")), type=str(_first(info, "type", "")),
        source_id=str(_first(info, "source_id", "")),
        srate=float(_first(info, "nominal_srate", 0.0)), labels=labels, units=units,
        times=np.asarray(raw["time_stamps"], dtype=float), data=data,
        meta=_flat(_first(desc, "neurorvq")), layout=_flat(_first(desc, "layout")),
        flag_bits={k: int(v) for k, v in _flat(_first(desc, "flags")).items() if v.isdigit()},
    )


def _is_markers(s: Stream, fmt: str) -> bool:
    return not s.is_output and (fmt == "string" or (s.type.lower() == "markers"
                                                    and s.srate == 0))


def load_session(path: str | Path) -> Session:
    """Read ``path`` with pyxdf (clock offsets applied) and sort its streams by role."""
    from neurorvq_stream.streamer._xdf import load_xdf

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"Recording {str(path)!r} does not exist.")
    try:
        raws, _ = load_xdf(path, dejitter_timestamps=False)
    except Exception as err:
        raise ValueError(f"Cannot read XDF {str(path)!r} ({err}).") from err
    streams = [_stream(r) for r in raws]
    formats = [_first(r["info"], "channel_format", "") for r in raws]
    found = {role: [s for s in streams if s.is_output and s.type.lower() in types]
             for role, types in OUTPUT_TYPES.items()}
    predictions = sorted(found.pop("predictions"), key=_began)
    for role, of_role in found.items():
        if len(of_role) > 1:
            logger.warning("%d %s streams in %s; the report shows %r.", len(of_role), role,
                           path.name, of_role[0].name)
    markers = sorted((float(t), str(row[0])) for s, fmt in zip(streams, formats, strict=True)
                     if _is_markers(s, fmt) for t, row in zip(s.times, s.data, strict=True))
    return Session(path, streams, _source_stream(streams, formats), markers,
                   predictions=predictions,
                   **{role: of_role[0] for role, of_role in found.items() if of_role})


def _began(stream: Stream) -> float:
    """When ``stream`` began publishing (never: after every other)."""
    return float(stream.times.min()) if len(stream.times) else float("inf")


def _source_stream(streams: list[Stream], formats: list[str]) -> Stream | None:
    meta = next((s.meta for s in streams if s.is_output), {})
    inputs = [s for s, fmt in zip(streams, formats, strict=True)
              if not s.is_output and fmt != "string" and s.srate > 0 and len(s.times)]
    named = [s for s in inputs if s.name == meta.get("source_stream")
             and meta.get("source_id", s.source_id) == s.source_id]
    if named:
        return named[0]
    return max(inputs, key=lambda s: s.data.shape[1], default=None)
