"""Look back at a recorded session: one self-contained HTML report (``mne.Report``) per XDF.

    from neurorvq_stream.report import make_report
    make_report("session.xdf", "session.html")
"""

from ._report import FIGURES, make_report
from ._session import Session, Stream, load_session

__all__ = ["FIGURES", "Session", "Stream", "load_session", "make_report"]
