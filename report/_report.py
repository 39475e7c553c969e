"""Assemble the figures of one recorded session into an ``mne.Report`` HTML file."""

from __future__ import annotations

import html
from collections.abc import Callable, Mapping
from pathlib import Path

from . import _figures as figures
from ._session import Session, load_session

#: Section title -> (figure title, what makes it); the order of the report.
FIGURES: dict[str, tuple[str, ...]] = {
    "Stream health": ("Stream health over time",),
    "Latency": ("Latency per stage", "End-to-end latency over time"),
    "Predictions": ("Predictions against the markers", "Confusion matrix"),
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


def _summary_html(session: Session) -> str:
    rows = "".join(
        f"<tr><td>{html.escape(s.name)}</td><td>{html.escape(s.type)}</td>"
        f"<td>{html.escape(s.source_id)}</td><td>{s.data.shape[1]}</td>"
        f"<td>{'irregular' if s.srate == 0 else f'{s.srate:g} Hz'}</td>"
        f"<td>{len(s.times)}</td>"
        f"<td>{(s.times[-1] - s.times[0]) if len(s.times) > 1 else 0:.1f}</td></tr>"
        for s in session.streams)
    meta = "".join(f"<tr><td>{html.escape(k)}</td><td>{html.escape(v[:300])}</td></tr>"
                   for k, v in session.meta.items())
    return (f"<p>{html.escape(str(session.path))}: {len(session.markers)} markers.</p>"
            "<table class='table table-sm'><tr><th>stream</th><th>type</th><th>source_id</th>"
            "<th>channels</th><th>rate</th><th>samples</th><th>seconds</th></tr>"
            f"{rows}</table><table class='table table-sm'><tr><th>pipeline</th><th></th></tr>"
            f"{meta}</table>")


def figure_makers(budgets: figures.Budgets) -> dict[str, Callable[[Session], tuple]]:
    """Figure title -> function making that figure (and its caption) from a session."""
    return {
        "Stream health over time": figures.stream_health,
        "Latency per stage": lambda s: figures.latency_distributions(s, budgets),
        "End-to-end latency over time": lambda s: figures.end_to_end_over_time(s, budgets),
        "Predictions against the markers": figures.predictions_over_time,
        "Confusion matrix": figures.confusion,
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
