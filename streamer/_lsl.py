"""Thin helpers around pylsl: loopback configuration, stream discovery, channel metadata.

Kept in LSL's own vocabulary (stream info, ``desc``, channels/channel/label/unit/type) so
anything written here can be read by LabRecorder, mne-lsl or OpenViBE and vice versa.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

LOOPBACK_CONFIG = Path(__file__).with_name("lsl_api_loopback.cfg")


def use_loopback_config() -> str:
    """Point liblsl at the shipped loopback-only config unless the user chose one.

    Tests, the demo and the benchmarks call this before importing pylsl; ``run`` does not,
    so it follows liblsl's normal lookup and reaches amplifiers on a lab network.
    Returns the configuration path in effect.
    """
    os.environ.setdefault("LSLAPICFG", str(LOOPBACK_CONFIG))
    return os.environ["LSLAPICFG"]


@dataclass(frozen=True)
class ChannelInfo:
    """One channel's metadata as found under ``desc/channels/channel``."""

    label: str
    unit: str = ""
    type: str = ""
    location: tuple[float, float, float] | None = None


@dataclass(frozen=True)
class StreamDescription:
    """What discovery tells about a stream before opening it."""

    name: str
    type: str
    source_id: str
    hostname: str
    n_channels: int
    sfreq: float
    channel_format: str

    def __str__(self) -> str:
        rate = "irregular" if self.sfreq == 0 else f"{self.sfreq:g} Hz"
        return (
            f"{self.name!r} type={self.type!r} {self.n_channels} ch @ {rate} "
            f"({self.channel_format}) source_id={self.source_id!r} host={self.hostname!r}"
        )


_FORMATS = {
    1: "float32",
    2: "double64",
    3: "string",
    4: "int32",
    5: "int16",
    6: "int8",
    7: "int64",
}


def describe(info: object) -> StreamDescription:
    """Summarize a ``pylsl.StreamInfo`` for listings and error messages."""
    return StreamDescription(
        name=info.name(),
        type=info.type(),
        source_id=info.source_id(),
        hostname=info.hostname(),
        n_channels=info.channel_count(),
        sfreq=info.nominal_srate(),
        channel_format=_FORMATS.get(info.channel_format(), "undefined"),
    )


def _quote(value: str) -> str:
    """XPath string literal for a user-given value (LSL predicates are XPath 1.0)."""
    if "'" not in value:
        return f"'{value}'"
    if '"' not in value:
        return f'"{value}"'
    raise ValueError(f"Stream property value {value!r} contains both quote kinds; rename it.")


def find_streams(
    name: str | None = None,
    type: str | None = None,
    source_id: str | None = None,
    host: str | None = None,
    timeout: float = 1.0,
) -> list[object]:
    """Resolve the streams that match every given property (all streams if none given).

    Returns ``pylsl.StreamInfo`` objects sorted by name, so listings are stable.
    """
    import pylsl

    props = {"name": name, "type": type, "source_id": source_id, "hostname": host}
    clauses = [f"{key}={_quote(val)}" for key, val in props.items() if val is not None]
    if clauses:
        infos = pylsl.resolve_bypred(" and ".join(clauses), minimum=1, timeout=timeout)
        # resolve_bypred returns as soon as one stream answers; other matches take up to
        # one resolve wave (~0.5 s) more, and ambiguity must not go unnoticed.
        if infos:
            more = pylsl.resolve_bypred(" and ".join(clauses), minimum=len(infos) + 1,
                                        timeout=min(timeout, 1.0))
            infos = _unique(infos + more)
    else:
        infos = pylsl.resolve_streams(wait_time=timeout)
    return sorted(infos, key=lambda i: (i.name(), i.source_id(), i.uid()))


def _unique(infos: list[object]) -> list[object]:
    seen: dict[str, object] = {}
    for info in infos:
        seen.setdefault(info.uid(), info)
    return list(seen.values())


def format_stream_list(infos: list[object]) -> str:
    """Printable, numbered listing of resolved streams (used by ``list`` and ``run``)."""
    if not infos:
        return "No LSL streams found."
    lines = [f"{len(infos)} LSL stream(s) in reach:"]
    lines += [f"  [{k}] {describe(info)}" for k, info in enumerate(infos)]
    return "\n".join(lines)


def read_channels(info: object) -> list[ChannelInfo]:
    """Channel metadata from ``desc/channels/channel``; labels default to ``ch1..chN``.

    Locations are read from ``location/X,Y,Z`` (millimetres in the XDF convention, but
    kept as written: channel mapping only compares directions and relative distances).
    """
    n = info.channel_count()
    found: list[ChannelInfo] = []
    channel = info.desc().child("channels").child("channel")
    while not channel.empty() and len(found) < n:
        label = channel.child_value("label") or f"ch{len(found) + 1}"
        location = None
        loc = channel.child("location")
        if not loc.empty():
            values = [loc.child_value(axis) for axis in ("X", "Y", "Z")]
            try:
                location = tuple(float(v) for v in values)
            except ValueError:
                location = None
        found.append(
            ChannelInfo(
                label=label,
                unit=channel.child_value("unit"),
                type=channel.child_value("type"),
                location=location,
            )
        )
        channel = channel.next_sibling("channel")
    found += [ChannelInfo(label=f"ch{k + 1}") for k in range(len(found), n)]
    return found


def write_channels(info: object, channels: list[ChannelInfo]) -> None:
    """Append ``desc/channels/channel`` entries (label, unit, type, location)."""
    if len(channels) != info.channel_count():
        raise ValueError(
            f"Stream {info.name()!r} has {info.channel_count()} channels but "
            f"{len(channels)} channel descriptions were given."
        )
    node = info.desc().append_child("channels")
    for ch in channels:
        c = node.append_child("channel")
        c.append_child_value("label", ch.label)
        if ch.unit:
            c.append_child_value("unit", ch.unit)
        if ch.type:
            c.append_child_value("type", ch.type)
        if ch.location is not None:
            loc = c.append_child("location")
            for axis, value in zip(("X", "Y", "Z"), ch.location, strict=True):
                loc.append_child_value(axis, f"{value:.6g}")
