from ._channel_mapping import ChannelMapping, map_channels
from ._config import ConfigError, RunConfig
from ._datasets import SUBJECTS, bundled_events, bundled_recording
from ._inlet import MarkerFormat
from ._lsl import find_streams, format_stream_list, use_loopback_config
from ._outlets import Decision, read_decision
from ._pipeline import Pipeline
from ._player import Player, Recording, RecordingError, load_recording
from ._preprocessing import Preprocessor, unit_scale
from ._quality import ChannelFlag, UnitCheck, assess_window, unit_warning
from ._recorder import Recorder, StreamQuery
from ._results import PipelineStatus, ResultHub, WindowResult
from ._windows import MarkerLockedWindows
from ._xdf import load_xdf

__all__ = [
    "SUBJECTS",
    "ChannelFlag",
    "ChannelMapping",
    "ConfigError",
    "Decision",
    "MarkerFormat",
    "MarkerLockedWindows",
    "Pipeline",
    "PipelineStatus",
    "Player",
    "Preprocessor",
    "Recorder",
    "Recording",
    "RecordingError",
    "ResultHub",
    "RunConfig",
    "StreamQuery",
    "UnitCheck",
    "WindowResult",
    "assess_window",
    "bundled_events",
    "bundled_recording",
    "find_streams",
    "format_stream_list",
    "load_recording",
    "load_xdf",
    "map_channels",
    "read_decision",
    "unit_scale",
    "unit_warning",
    "use_loopback_config",
]
