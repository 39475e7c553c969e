"""Look back at a recorded session: one self-contained HTML report (``mne.Report``) per XDF.

    from neurorvq_stream.report import make_report
    make_report("session.xdf", "session.html")
"""

if __name__ != "neurorvq_stream.report":  # by its folder name it would be a second copy
    raise ImportError(f"Import neurorvq_stream.report, not the folder {__name__!r}: the folders "
                      "are parts of one package (pip install -e . installs it).")

from ._report import make_report
from ._session import load_session

__all__ = [
    "load_session",
    "make_report",
]
