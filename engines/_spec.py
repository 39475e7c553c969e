"""What a model is shown: which samples a window holds and how they were filtered.

One type each, one set of defaults: a run's ``windows`` and ``preprocessing`` sections, a
decoder's window spec and the training data all say the same thing with :class:`Window`
and :class:`Preprocessing`, so what a decoder was calibrated on and what a run applies are
compared and built in one way.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, model_validator

from ._format import MODEL_RATE
from ._schema import Schema, Unit, Whole, check, clashes, one_of

MODES = ("markers", "sliding")


def _high_pass(value: float) -> str | None:
    return None if value >= 0 else f"must be >= 0 Hz (0 = no high-pass), got {value:g}"


class Preprocessing(Schema):
    """Causal filters before resampling to 200 Hz.

    ``l_freq`` 0 turns the high-pass off (DC-coupled, for slow cortical potentials);
    any positive value below ``h_freq`` is a high-pass edge (0.01 Hz and up tested).
    ``notch`` filters ``line_freq`` and its harmonics. ``reference`` "average" subtracts
    the common average of the mapped EEG channels; "none" keeps the amplifier's reference.
    """

    line_freq: Annotated[float, Unit("Hz"), one_of((50.0, 60.0))] = 50.0
    notch: bool = True
    l_freq: Annotated[float, Unit("Hz; 0 = no high-pass"), check(_high_pass)] = 0.5
    # Below the Nyquist frequency of the 200 Hz model rate.
    h_freq: Annotated[float, Unit("Hz"), Field(gt=0, lt=100)] = 44.5
    reference: Annotated[str, one_of(("none", "average"))] = "none"
    clip_uv: Annotated[float, Unit("µV"), Field(gt=0)] = 500.0

    @model_validator(mode="after")
    def _band(self) -> Preprocessing:
        if self.l_freq >= self.h_freq:
            clashes([("l_freq", f"must be below preprocessing.h_freq ({self.h_freq:g} Hz), "
                                f"got {self.l_freq:g} (0 = no high-pass)")])
        return self

    def describe(self) -> str:
        """The filters in one phrase ("band 0.5-44.5 Hz, notch 50 Hz; reference none; ...")."""
        notch = f", notch {self.line_freq:g} Hz" if self.notch else ""
        return (f"band {self.l_freq:g}-{self.h_freq:g} Hz{notch}; reference {self.reference}; "
                f"clip {self.clip_uv:g} uV")


class Window(Schema):
    """Which samples one window holds: ``n_patches`` 1 s patches at 200 Hz.

    ``sliding``: the newest samples, whenever a window is due; ``markers``: from
    ``marker_offset`` seconds after a marker that locks windows. How often a sliding window
    is taken (the run's ``windows.hop``) does not change what a window holds, so it is not
    part of this.
    """

    mode: Annotated[str, one_of(MODES)] = "sliding"
    n_patches: Annotated[Whole, Unit("1 s patches"), Field(ge=1, le=256)] = 4
    marker_offset: Annotated[float, Unit("seconds"), Field(ge=-60, le=60)] = -0.2

    @property
    def cut(self) -> Window:
        """Only the window (without what a subclass adds): compare cuts with ``==``."""
        return Window(mode=self.mode, n_patches=self.n_patches, marker_offset=self.marker_offset)

    @property
    def n_samples(self) -> int:
        """Samples per channel in one window."""
        return self.n_patches * round(MODEL_RATE)

    def describe(self) -> str:
        """The window in one phrase ("1 s from marker -0.2 s", "sliding 4 s")."""
        if self.mode == "markers":
            return f"{self.n_patches} s from marker {self.marker_offset:+g} s"
        return f"sliding {self.n_patches} s"
