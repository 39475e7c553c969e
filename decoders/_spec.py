"""What a decoder needs from the live path: the window it was trained on and its preprocessing.

A decoder is only right on windows cut and filtered the way its training epochs were, so
the spec travels with the decoder file (sidecar ``window_spec``) and the running pipeline
applies it. Older classifier sidecars, which only recorded the window
(``provenance.window``), get the preprocessing defaults they were trained with.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from typing import Any

# The preprocessing every classifier was trained with before specs existed: the defaults of
# streamer's PreprocessingConfig (kept equal by tests/decoders/test_spec.py).
LEGACY_PREPROCESSING = {
    "l_freq": 0.5, "h_freq": 44.5, "line_freq": 50.0, "notch": True,
    "reference": "none", "clip_uv": 500.0,
}
MODES = ("markers", "sliding")
REFERENCES = ("none", "average")


class SpecError(ValueError):
    """A window spec that cannot be applied: the message names the field and the fix."""


@dataclass(frozen=True)
class WindowSpec:
    """What the live path must give a decoder: the window and the preprocessing.

    ``n_patches`` 1 s patches of 200 Hz samples per window; in ``markers`` mode a window
    starts ``marker_offset`` s after each marker whose label is in ``labels`` (every
    marker when ``labels`` is empty). ``channels`` are NeuroRVQ electrode names in the order
    the decoder takes them. The preprocessing fields mean what streamer's
    ``RunConfig.preprocessing`` keys of the same name mean (``l_freq`` 0: no high-pass).
    """

    mode: str
    n_patches: int
    marker_offset: float
    labels: tuple[str, ...]
    channels: tuple[str, ...]
    l_freq: float = LEGACY_PREPROCESSING["l_freq"]
    h_freq: float = LEGACY_PREPROCESSING["h_freq"]
    line_freq: float = LEGACY_PREPROCESSING["line_freq"]
    notch: bool = LEGACY_PREPROCESSING["notch"]
    reference: str = LEGACY_PREPROCESSING["reference"]
    clip_uv: float = LEGACY_PREPROCESSING["clip_uv"]

    def __post_init__(self) -> None:
        problems = []
        if self.mode not in MODES:
            problems.append(f"mode {self.mode!r} is not one of {MODES}")
        if not isinstance(self.n_patches, int) or self.n_patches < 1:
            problems.append(f"n_patches must be a whole number >= 1, got {self.n_patches!r}")
        if not self.channels:
            problems.append("channels is empty")
        if len(set(self.channels)) != len(self.channels):
            problems.append("channels repeat a name")
        if self.reference not in REFERENCES:
            problems.append(f"reference {self.reference!r} is not one of {REFERENCES}")
        if not (0 <= self.l_freq < self.h_freq) or not math.isfinite(self.h_freq):
            problems.append(f"band {self.l_freq:g}-{self.h_freq:g} Hz is not 0 <= l_freq < "
                            "h_freq")
        if problems:
            raise SpecError("Invalid window spec: " + "; ".join(problems) + ".")

    @property
    def n_samples(self) -> int:
        """Samples per channel in one window (200 per patch)."""
        return self.n_patches * 200

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (tuples become lists)."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> WindowSpec:
        """Inverse of :meth:`to_dict`; preprocessing keys left out take the legacy defaults."""
        if not isinstance(data, dict):
            raise SpecError(f"A window spec must be a JSON object, got {type(data).__name__}.")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        missing = sorted({"mode", "n_patches", "marker_offset", "labels", "channels"} - set(data))
        if unknown or missing:
            parts = ([f"unknown keys {unknown}"] if unknown else []) + (
                [f"missing keys {missing}"] if missing else [])
            raise SpecError("Invalid window spec: " + "; ".join(parts) + ".")
        values = dict(data)
        for key in ("labels", "channels"):
            values[key] = tuple(str(v) for v in values[key])
        for key in ("marker_offset", *[k for k in LEGACY_PREPROCESSING if k not in
                                       ("notch", "reference")]):
            if key in values:
                values[key] = float(values[key])
        return cls(**values)

    @classmethod
    def from_legacy_sidecar(cls, sidecar: dict[str, Any]) -> WindowSpec:
        """The spec of a classifier saved before specs existed (shipped checker head).

        Its window is ``provenance.window`` (mode, marker_offset, marker_length), its
        labels are its class names, its preprocessing the defaults of that time.
        """
        window = (sidecar.get("provenance") or {}).get("window")
        channels = tuple(sidecar.get("channels") or ())
        classes = tuple(sidecar.get("classes") or ())
        if not isinstance(window, dict) or not channels:
            raise SpecError("The sidecar records no window (provenance.window) or no "
                            "channels, so the window this classifier needs is unknown; "
                            "re-calibrate it with `neurorvq-stream calibrate`.")
        return cls(
            mode=str(window.get("mode", "markers")),
            n_patches=int(window.get("marker_length") or window.get("n_patches") or 1),
            marker_offset=float(window.get("marker_offset", 0.0)),
            labels=classes,
            channels=channels,
        )

    def describe(self) -> str:
        """One line a user can compare with their run settings."""
        if self.mode == "markers":
            window = (f"{self.n_patches} s from marker {self.marker_offset:+g} s "
                      f"({', '.join(self.labels)})")
        else:
            window = f"sliding {self.n_patches} s"
        notch = f", notch {self.line_freq:g} Hz" if self.notch else ""
        return (f"{window}; {len(self.channels)} channels; band {self.l_freq:g}-"
                f"{self.h_freq:g} Hz{notch}; reference {self.reference}; clip "
                f"{self.clip_uv:g} uV")
