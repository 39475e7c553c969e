"""Model cards: a short markdown file next to each shipped model, plus its numbers as JSON."""

from __future__ import annotations

import json
from pathlib import Path


def _table(rows: dict[str, object]) -> str:
    lines = ["| | |", "|---|---|"]
    for key, value in rows.items():
        text = f"{value:.4f}" if isinstance(value, float) else str(value)
        lines.append(f"| {key} | {text} |")
    return "\n".join(lines)


def write_card(
    model_path: Path, title: str, summary: str, sections: dict[str, dict[str, object]]
) -> Path:
    """Write ``<model stem>.md`` (human-readable) and ``<model stem>.card.json`` (numbers)."""
    model_path = Path(model_path)
    parts = [f"# {title}", "", f"File: `{model_path.name}`", "", summary, ""]
    for heading, rows in sections.items():
        parts += [f"## {heading}", "", _table(rows), ""]
    card = model_path.with_suffix(".md")
    card.write_text("\n".join(parts))
    model_path.with_suffix(".card.json").write_text(json.dumps(sections, indent=1, default=str))
    return card
