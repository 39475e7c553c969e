"""Assemble the figures of one recorded session into an ``mne.Report`` HTML file."""

from __future__ import annotations

import html
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from . import _figures as figures
from ._session import Session, load_session

#: Section title -> (figure title, what makes it); the order of the report.
FIGURES: dict[str, tuple[str, ...]] = {
    "Stream health": ("Stream health over time",),
    "Latency": ("Latency per stage", "End-to-end latency over time"),
    "Predictions": ("Predictions against the markers", "Confusion matrix",
                    "Reliability of the probabilities"),
    "Tokens": ("Codebook usage per branch and level",),
    "Reconstruction": ("Input vs reconstruction",),
}


def _budgets(session: Session, given: Mapping[str, float] | None) -> figures.Budgets:
    """Budgets from the recording's metadata, else ``given``, else the run defaults."""
    from neurorvq_stream.streamer import RunConfig

    stages = ("preprocess", "inference", "end_to_end")
    recorded = {s: session.meta.get(f"budget_{s}_ms") for s in stages}
    if all(v is not None for v in recorded.values()):
        return figures.Budgets(**{s: float(v) for s, v in recorded.items()},
                               source="as recorded")
    if given is not None:
        return figures.Budgets(**{s: float(given[s]) for s in stages}, source="as given")
    default = RunConfig().budgets
    return figures.Budgets(**{s: float(getattr(default, f"{s}_ms")) for s in stages},
                           source="run defaults; the recording does not say")


def _row(*cells: object) -> str:
    return "<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in cells) + "</tr>"


def _table(columns: Sequence[tuple[str, int]], rows: str) -> str:
    """A table of fixed column widths (header, % of the page) whose long cells (an engine's
    description, a path) wrap instead of being cut or running off the page."""
    head = "".join(f"<th style='width:{width}%'>{html.escape(name)}</th>"
                   for name, width in columns)
    return ("<table class='table table-sm' style='table-layout:fixed; width:100%; "
            f"overflow-wrap:anywhere'><tr>{head}</tr>{rows}</table>")


def _summary_html(session: Session) -> str:
    """The streams recorded and what produced the outlets (their ``desc/neurorvq``), whole."""
    rows = "".join(
        _row(s.name, s.type, s.source_id, s.data.shape[1],
             "irregular" if s.srate == 0 else f"{s.srate:g} Hz", len(s.times),
             f"{(s.times[-1] - s.times[0]) if len(s.times) > 1 else 0:.1f}")
        for s in session.streams)
    meta = "".join(_row(k, v) for k, v in session.meta.items() if k != "mapping")
    streams = _table([("stream", 25), ("type", 12), ("source_id", 25), ("channels", 9),
                      ("rate", 11), ("samples", 9), ("seconds", 9)], rows)
    return (f"<p>{html.escape(str(session.path))}: {len(session.markers)} markers.</p>"
            f"{streams}{_table([('pipeline', 22), ('', 78)], meta)}"
            "<p>The channel mapping has a section of its own.</p>")


def _mapping_html(session: Session) -> str:
    """The full channel mapping as the outlets published it, and the channels left out."""
    pairs = session.mapping
    if not pairs:
        return "<p>The recording does not say how channels were mapped.</p>"
    used = {source for source, _ in pairs}
    unused = [c for c in session.eeg.labels if c not in used] if session.eeg is not None else []
    rows = "".join(_row(k, source, target) for k, (source, target) in enumerate(pairs))
    left_out = (f"<p style='overflow-wrap:anywhere'>Not used ({len(unused)}): "
                f"{html.escape(', '.join(unused))}.</p>" if unused else "")
    return (f"<p>{len(pairs)} stream channels feed the model, in this order "
            "(<code>desc/neurorvq/mapping</code> of the outlets).</p>"
            f"{_table([('#', 10), ('stream channel', 45), ('NeuroRVQ electrode', 45)], rows)}"
            f"{left_out}")


def figure_makers(budgets: figures.Budgets) -> dict[str, Callable[[Session], tuple]]:
    """Figure title -> function making that figure (and its caption) from a session."""
    return {
        "Stream health over time": figures.stream_health,
        "Latency per stage": lambda s: figures.latency_distributions(s, budgets),
        "End-to-end latency over time": lambda s: figures.end_to_end_over_time(s, budgets),
        "Predictions against the markers": figures.predictions_over_time,
        "Confusion matrix": figures.confusion,
        "Reliability of the probabilities": figures.reliability,
        "Codebook usage per branch and level": figures.codebook_usage,
        "Input vs reconstruction": _reconstruction_as_recorded,
    }


def _reconstruction_as_recorded(session: Session) -> tuple:
    """Reconstruction examples with the preprocessing the recording names (else defaults)."""
    meta = session.meta
    kwargs: dict = {k: float(meta[k]) for k in ("line_freq", "clip_uv") if k in meta}
    if meta.get("notch") == "False":
        kwargs["line_freq"] = None
    if "l_freq" in meta and "h_freq" in meta:
        kwargs["band"] = (float(meta["l_freq"]), float(meta["h_freq"]))
    if "reference" in meta:
        kwargs["reference"] = meta["reference"]
    return figures.reconstruction_examples(session, **kwargs)


def make_report(
    xdf_path: str | Path,
    html_path: str | Path,
    progress: bool = True,
    budgets: Mapping[str, float] | None = None,
) -> Path:
    """Write a self-contained HTML report of the session recorded in ``xdf_path``.

    ``budgets`` (``preprocess``, ``inference``, ``end_to_end`` in ms) is used when the
    recording does not carry its own. Returns the path written.
    """
    import matplotlib
    import mne
    from tqdm import tqdm

    html_path = Path(html_path)
    if html_path.suffix.lower() not in (".html", ".htm"):
        raise ValueError(f"The report {str(html_path)!r} must be an .html file.")
    bar = tqdm(total=1 + sum(map(len, FIGURES.values())), desc="Session report",
               unit="step", disable=not progress)
    bar.set_postfix_str("reading XDF")
    session = load_session(xdf_path)
    bar.update()
    limits = _budgets(session, budgets)
    makers = figure_makers(limits)
    Step = tuple[str, str, Callable[[Session], tuple[object, str]]]
    steps: list[Step] = [(section, title, makers[title])
                         for section, titles in FIGURES.items() for title in titles]
    report = mne.Report(title=f"NeuroRVQ session: {Path(xdf_path).name}", verbose="error")
    report.add_html(_summary_html(session), title="Recording", section="Recording")
    report.add_html(_mapping_html(session), title="Channel mapping", section="Recording")
    with matplotlib.rc_context({"figure.dpi": 100}):
        for section, title, make in steps:
            bar.set_postfix_str(title)
            fig, caption = make(session)
            report.add_figure(fig, title=title, caption=caption, image_format="png",
                              section=section)
            bar.update()
    bar.close()
    html_path.parent.mkdir(parents=True, exist_ok=True)
    report.save(html_path, open_browser=False, overwrite=True, verbose="error")
    return html_path
