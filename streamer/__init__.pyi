from ._config import ConfigError, RunConfig
from ._datasets import bundled_recording
from ._lsl import find_streams, use_loopback_config
from ._outlets import read_decision
from ._pipeline import Pipeline
from ._player import Player, Recording, load_recording
from ._recorder import Recorder
from ._results import PipelineStatus, ResultHub, WindowResult

__all__ = [
    "ConfigError",
    "Pipeline",
    "PipelineStatus",
    "Player",
    "Recorder",
    "Recording",
    "ResultHub",
    "RunConfig",
    "WindowResult",
    "bundled_recording",
    "find_streams",
    "load_recording",
    "read_decision",
    "use_loopback_config",
]
