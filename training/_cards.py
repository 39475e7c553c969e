"""Model cards: a short markdown file next to each shipped model, plus its numbers as JSON."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

from neurorvq_stream.engines._schema import Schema, Text, check, kind_of


def _card_value(value: Any) -> str | None:
    counts = isinstance(value, dict) and all(
        isinstance(k, str) and type(v) is int for k, v in value.items())
    if isinstance(value, bool | int | float | str) or counts:
        return None
    return (f"expected a number, true/false, a text or counts per class, "
            f"got {kind_of(value)}")


# What a card row holds: a number, a flag, a text, or counts per class (one check, so a
# wrong value gets one line, not one per alternative).
CardValue = Annotated[Any, check(_card_value)]


class ModelCard(Schema):
    """``<model stem>.card.json``: checked when written, so whoever reads it (a lab's
    model registry, a test) can validate it with this same model."""

    model: Text  # the model's file name
    title: Text
    summary: Text
    sections: dict[str, dict[str, CardValue]]

    def markdown(self) -> str:
        parts = [f"# {self.title}", "", f"File: `{self.model}`", "", self.summary, ""]
        for heading, rows in self.sections.items():
            parts += [f"## {heading}", "", _table(rows), ""]
        return "\n".join(parts)


def _table(rows: dict[str, CardValue]) -> str:
    lines = ["| | |", "|---|---|"]
    for key, value in rows.items():
        text = f"{value:.4f}" if isinstance(value, float) else str(value)
        lines.append(f"| {key} | {text} |")
    return "\n".join(lines)


def write_card(
    model_path: Path, title: str, summary: str, sections: dict[str, dict[str, CardValue]]
) -> Path:
    """Write ``<model stem>.md`` (human-readable) and ``<model stem>.card.json`` (numbers)."""
    model_path = Path(model_path)
    card = ModelCard(model=model_path.name, title=title, summary=summary, sections=sections)
    path = model_path.with_suffix(".md")
    path.write_text(card.markdown())
    model_path.with_suffix(".card.json").write_text(json.dumps(card.to_dict(), indent=1))
    return path
