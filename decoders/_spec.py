"""What a decoder needs from the live path: the window it was trained on and its preprocessing.

A decoder is only right on windows cut and filtered the way its training epochs were, so
the spec travels with the decoder file (sidecar ``window_spec``) and the running pipeline
applies it. Older classifier sidecars, which only recorded the window
(``provenance.window``), get the preprocessing defaults they were trained with (those of
``engines.Preprocessing``); specs written by 0.2.0 held the preprocessing keys flat.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any

from pydantic import model_validator

from neurorvq_stream.engines._schema import (
    Names,
    Problem,
    SchemaError,
    check,
)
from neurorvq_stream.engines._spec import Preprocessing, Window


class SpecError(SchemaError):
    """A window spec that cannot be applied: each line names the field and what it must be."""

    document = "window spec"


def _channels(value: tuple[str, ...]) -> str | None:
    if not value:
        return "is empty"
    return "repeat a name" if len(set(value)) != len(value) else None


class WindowSpec(Window):
    """What the live path must give a decoder: its window, channels and preprocessing.

    In ``markers`` mode a window is locked by each marker whose label is in ``labels``
    (every marker when ``labels`` is empty). ``channels`` are NeuroRVQ electrode names in
    the order the decoder takes them. ``preprocessing`` is the run config's section of
    that name.
    """

    error = SpecError

    labels: Names
    channels: Annotated[Names, check(_channels)]
    preprocessing: Preprocessing = Preprocessing()

    @model_validator(mode="before")
    @classmethod
    def _flat_preprocessing(cls, data: Any) -> Any:
        """Specs written by 0.2.0 hold the preprocessing keys beside the window's."""
        keys = set(Preprocessing.model_fields).intersection(data if isinstance(data, dict) else ())
        if not keys:
            return data
        rest = {k: v for k, v in data.items() if k not in keys}
        return {**rest, "preprocessing": {k: data[k] for k in keys}}

    @classmethod
    def of(cls, window: Window, labels: Sequence[str], channels: Sequence[str],
           preprocessing: Preprocessing) -> WindowSpec:
        """The spec of ``window`` (a run's windows, a path's) locked on ``labels``."""
        return cls(**dict(window.cut), labels=tuple(labels), channels=tuple(channels),
                   preprocessing=preprocessing)

    @classmethod
    def from_legacy_sidecar(cls, sidecar: dict[str, Any]) -> WindowSpec:
        """The spec of a classifier saved before specs existed (the shipped checker head until
        its sidecar was re-saved).

        Its window is ``provenance.window`` (mode, marker_offset, marker_length), its
        labels are its class names, its preprocessing the defaults of that time.
        """
        window = (sidecar.get("provenance") or {}).get("window")
        channels = tuple(sidecar.get("channels") or ())
        classes = tuple(sidecar.get("classes") or ())
        if not isinstance(window, dict) or not channels:
            raise SpecError([Problem("", "The sidecar records no window (provenance.window) or "
                                         "no channels, so the window this classifier needs "
                                         "is unknown; re-calibrate it with `neurorvq-stream "
                                         "calibrate`.")])
        return cls.from_dict({
            "mode": window.get("mode", "markers"),
            "n_patches": window.get("marker_length") or window.get("n_patches") or 1,
            "marker_offset": float(window.get("marker_offset", 0.0)),
            "labels": classes, "channels": channels,
        })

    def describe(self) -> str:
        """One line a user can compare with their run settings."""
        labels = f" ({', '.join(self.labels)})" if self.mode == "markers" else ""
        return (f"{super().describe()}{labels}; {len(self.channels)} channels; "
                f"{self.preprocessing.describe()}")
