"""Look back at a recorded session: one self-contained HTML report (``mne.Report``) per XDF.

    from neurorvq_stream.report import make_report
    make_report("session.xdf", "session.html")
"""

from neurorvq_stream._folders import refuse_folder_name

refuse_folder_name(__name__)

from ._report import make_report
from ._session import load_session

__all__ = [
    "load_session",
    "make_report",
]
