"""One way to check what a user or an older version wrote: strict pydantic models.

The run config, decoder and checkpoint sidecars, window specs and model cards are pydantic
v2 models (``Schema``): strict types (``hop: "0.5"`` is an error, not 0.5), unknown keys
refused, and every problem of a document reported at once by one ``ValidationError``.
pydantic is the well-kept library made for this; what it cannot know is how this project
words a problem, so :func:`problems` turns each of its errors into one line: the key path
and what is expected ("expected a number (seconds), got '0.5' (a string); write 0.5
without quotes").

Here, in the bottom layer, so the engines' own files can use it too; it imports no torch.
"""

from __future__ import annotations

import difflib
import re
import types
import typing
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, ClassVar

import annotated_types
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    ValidationError,
)
from pydantic.fields import FieldInfo
from pydantic_core import PydanticCustomError


@dataclass(frozen=True)
class Problem:
    """One thing wrong in a document: the key path, what is wrong, and its line."""

    key: str
    message: str
    line: int | None = None

    def format(self, source: str | None) -> str:
        where = f"{source}:{self.line}" if source and self.line else source
        return f"{where + ': ' if where else ''}{self.key + ': ' if self.key else ''}{self.message}"


class SchemaError(ValueError):
    """Everything wrong with one document; ``str()`` is ready to print, one line each."""

    document = "document"  # what the heading of several problems calls it

    def __init__(self, problems: Sequence[Problem], source: str | None = None,
                 errors: Sequence[Any] = ()) -> None:
        self.problems = tuple(problems)
        self.source = source
        # pydantic's own errors, for a document that holds this one (see ``problems``)
        self.errors = tuple(errors)
        lines = [p.format(source) for p in self.problems]
        if len(lines) > 1:
            head = f"{source}: " if source else ""
            lines = [f"{head}{len(lines)} problems in the {self.document}:"] + [
                f"  {line}" for line in lines
            ]
        super().__init__("\n".join(lines))


@dataclass(frozen=True)
class Unit:
    """Field metadata: the unit (and meaning of special values) named in messages."""

    text: str


class Schema(BaseModel):
    """A strict, frozen model whose problems raise ``error`` (a :class:`SchemaError`)."""

    model_config = ConfigDict(strict=True, extra="forbid", frozen=True, allow_inf_nan=False)
    error: ClassVar[type[SchemaError]] = SchemaError

    def __init__(self, /, **data: Any) -> None:
        try:
            super().__init__(**data)
        except ValidationError as err:
            raise self.error(problems(err, type(self)), errors=_flat(err.errors())) from None

    @classmethod
    def from_dict(cls, data: Any, source: str | None = None) -> typing.Self:
        """Build from nested mappings; every problem is collected into one ``error``.

        ``source`` (a file name, "command line") prefixes each problem.
        """
        try:
            return cls.model_validate(data)
        except ValidationError as err:
            raise cls.error(problems(err, cls), source) from None
        except SchemaError as err:
            raise cls.error(err.problems, source, err.errors) from None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready nested dict (tuples become lists)."""
        return self.model_dump(mode="json")


# ---------------------------------------------------------------- field types
def check(rule: Callable[[Any], str | None]) -> AfterValidator:
    """A value check: ``rule`` returns None when the value is fine, else what it must be."""

    def validate(value: Any) -> Any:
        message = rule(value)
        if message is not None:
            raise PydanticCustomError("check", "{message}", {"message": message})
        return value

    return AfterValidator(validate)


def clashes(found: Sequence[tuple[str, str]]) -> None:
    """For a model validator: raise the (key, message) pairs of settings that are fine alone
    but not together (a model validator runs only once every field of it is fine)."""
    if found:
        raise PydanticCustomError("clash", "{message}", {
            "message": "; ".join(f"{key}: {message}" for key, message in found),
            "found": list(found)})


def one_of(allowed: Iterable[Any] | Callable[[], Iterable[Any]]) -> AfterValidator:
    """Value must be one of ``allowed`` (a callable is asked only when a value is checked)."""

    def rule(value: Any) -> str | None:
        choices = list(allowed() if callable(allowed) else allowed)
        if value in choices:
            return None
        close = did_you_mean(value, choices) if isinstance(value, str) else ""
        return f"got {value!r}{close}; must be one of {', '.join(map(repr, choices))}"

    return check(rule)


def did_you_mean(given: str, valid: Iterable[str]) -> str:
    close = difflib.get_close_matches(given, list(valid), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _whole(value: Any) -> Any:
    """2.0 is 2: YAML and TOML writers do not always keep a whole number's type."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _listed(value: Any) -> Any:
    return tuple(value) if isinstance(value, list) else value


def _not_blank(value: str) -> str | None:
    return None if value.strip() else "is empty; give a value, or leave it out for none"


Whole = Annotated[int, BeforeValidator(_whole)]
Text = Annotated[str, check(_not_blank)]
Names = Annotated[tuple[str, ...], BeforeValidator(_listed)]


# ---------------------------------------------------------------- pydantic errors as lines
def problems(err: ValidationError, model: type[BaseModel]) -> list[Problem]:
    """One :class:`Problem` per error of ``err`` raised while validating ``model``."""
    found = []
    for e in _flat(err.errors()):
        if e["type"] == "clash":
            prefix = "".join(f"{part}." for part in e["loc"])
            found += [Problem(prefix + key, message) for key, message in e["ctx"]["found"]]
        else:
            found.append(_problem(e, model))
    return found


def _flat(errors: Iterable[Any], loc: tuple[Any, ...] = ()) -> list[Any]:
    """pydantic's errors with the full key path: a section's own ``__init__`` (``Schema``)
    raised its errors, which pydantic hands up as one value error at the section's key."""
    flat = []
    for e in errors:
        inner = (e.get("ctx") or {}).get("error")
        if isinstance(inner, SchemaError) and inner.errors:
            flat += _flat(inner.errors, loc + tuple(e["loc"]))
        else:
            flat.append({**e, "loc": loc + tuple(e["loc"])})
    return flat


_EXPECTED = {"float_type": "a number", "finite_number": "a number", "int_type": "a whole number",
             "bool_type": "true or false", "string_type": "a string",
             "tuple_type": "a list of strings"}
_BOUNDS = {annotated_types.Gt: (">", "gt"), annotated_types.Ge: (">=", "ge"),
           annotated_types.Lt: ("<", "lt"), annotated_types.Le: ("<=", "le")}


def _problem(e: Any, model: type[BaseModel]) -> Problem:
    loc = [str(part) for part in e["loc"] if not isinstance(part, int)]
    item = next((part for part in e["loc"] if isinstance(part, int)), None)
    kind, value, ctx = e["type"], e.get("input"), e.get("ctx") or {}
    info = _field(model, loc)
    key = ".".join(loc)
    if kind == "check":
        message = ctx["message"]
    elif kind == "extra_forbidden":
        parent = _model_at(model, loc[:-1])
        valid = parent.model_fields if parent else ()
        section = ".".join(loc[:-1])
        message = (f"unknown key{did_you_mean(loc[-1], valid)}; valid keys"
                   f"{' in ' + section if section else ''}: {', '.join(sorted(valid))}")
    elif kind in ("model_type", "model_attributes_type"):
        message = (f"must be a section (key: value lines under it), got {_shown(value)} "
                   f"({kind_of(value)})")
    elif kind == "missing":
        message = "is missing"
    elif kind in _EXPECTED and item is not None:
        message = f"item {item}: expected a string, got {_shown(value)} ({kind_of(value)})"
    elif kind in _EXPECTED:
        expected = _EXPECTED[kind] + (f" ({_unit(info)})" if _unit(info) else "")
        if info is not None and _optional(info):
            expected += " or null"
        message = (f"expected {expected}, got {_shown(value)} ({kind_of(value)})"
                   f"{_hint(value, kind, _unit(info))}")
    elif info is not None and any(type(m) in _BOUNDS for m in info.metadata):
        rule = " and ".join(f"{_BOUNDS[type(m)][0]} {getattr(m, _BOUNDS[type(m)][1]):g}"
                            for m in info.metadata if type(m) in _BOUNDS)
        message = f"must be {rule}, got {value:g}"
    else:
        message = e["msg"]
    return Problem(key, message)


def _bare(annotation: Any) -> Any:
    """``X`` of ``X | None``."""
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union:
        rest = [a for a in typing.get_args(annotation) if a is not type(None)]
        return rest[0] if len(rest) == 1 else annotation
    return annotation


def _model_at(model: type[BaseModel], loc: Sequence[str]) -> type[BaseModel] | None:
    for part in loc:
        info = model.model_fields.get(part)
        inner = _bare(info.annotation) if info is not None else None
        if not (isinstance(inner, type) and issubclass(inner, BaseModel)):
            return None
        model = inner
    return model


def _field(model: type[BaseModel], loc: Sequence[str]) -> FieldInfo | None:
    parent = _model_at(model, loc[:-1]) if loc else None
    return parent.model_fields.get(loc[-1]) if parent is not None else None


def _optional(info: FieldInfo) -> bool:
    return type(None) in typing.get_args(info.annotation)


def _unit(info: FieldInfo | None) -> str:
    return next((m.text for m in info.metadata if isinstance(m, Unit)), "") if info else ""


def kind_of(value: Any) -> str:
    """How a value reads in a message: "a string", "an integer", "null"..."""
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


def _hint(value: Any, kind: str, unit: str) -> str:
    """What to write instead, for the mistakes people make."""
    number = kind in ("float_type", "int_type", "finite_number")
    if isinstance(value, str) and number:
        if re.fullmatch(_NUMBER + r"\s*", value):
            return f"; write {value.strip()} without quotes"
        if re.match(_NUMBER, value):
            return f"; write a plain number{', in ' + unit.split(';')[0] if unit else ''}"
        return ""
    if isinstance(value, str) and kind == "bool_type":
        return "; write true or false without quotes"
    if kind == "string_type" and isinstance(value, bool):
        return "; YAML reads yes/no/on/off/true/false as a boolean: quote the text"
    if kind == "string_type" and isinstance(value, int | float):
        return f"; quote it: '{value}'"
    if isinstance(value, str) and kind == "tuple_type":
        return f"; write [{value}] for a single one"
    if value is None and kind == "float_type":
        return "; leave the key out for the default"
    return ""
