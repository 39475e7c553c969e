"""How raw EEG is prepared before it becomes model input: one type, one set of defaults.

A run's ``preprocessing`` section, a decoder's window spec and the training data all say
the same thing with :class:`Preprocessing`, so what a decoder was calibrated on and what a
run applies are compared and built in one way.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, model_validator

from ._schema import Schema, Unit, check, clashes, one_of


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
