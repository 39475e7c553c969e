"""Live EEG path: LSL in -> ring buffer -> preprocessing -> windows -> engines -> LSL out."""

from ._channel_mapping import ChannelMapping, map_channels, normalize_label
from ._config import RunConfig
from ._inlet import Acquisition, EEGInlet, MarkerInlet
from ._lsl import (
    ChannelInfo,
    find_streams,
    format_stream_list,
    read_channels,
    use_loopback_config,
    write_channels,
)
from ._outlets import OUTLET_NAMES, ResultOutlets
from ._player import Player, Recording, bundled_recording, load_recording
from ._preprocessing import Preprocessor, unit_scale_from_lsl
from ._results import PipelineStatus, ResultHub, WindowResult
from ._ring_buffer import BufferOverrunError, RingBuffer
from ._runner import Pipeline
from ._windows import MarkerLockedWindows, SlidingWindows, Window

__all__ = [
    "OUTLET_NAMES",
    "Acquisition",
    "BufferOverrunError",
    "ChannelInfo",
    "ChannelMapping",
    "EEGInlet",
    "MarkerInlet",
    "MarkerLockedWindows",
    "Pipeline",
    "PipelineStatus",
    "Player",
    "Preprocessor",
    "Recording",
    "ResultHub",
    "ResultOutlets",
    "RingBuffer",
    "RunConfig",
    "SlidingWindows",
    "Window",
    "WindowResult",
    "bundled_recording",
    "find_streams",
    "format_stream_list",
    "load_recording",
    "map_channels",
    "normalize_label",
    "read_channels",
    "unit_scale_from_lsl",
    "use_loopback_config",
    "write_channels",
]
