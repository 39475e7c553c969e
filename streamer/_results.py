"""What the pipeline produces for each window, and where readers pick it up.

The inference stage writes, the LSL outlets and the Qt display read. Readers never block the
writer: the hub keeps the newest results in a bounded history and hands out copies of
references only (results are immutable once published).
"""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass, field

import numpy as np

from ._quality import flag_names


@dataclass(frozen=True)
class WindowResult:
    """Everything computed for one window of the live stream.

    ``t_last`` is the source LSL time (clock-corrected) of the window's last sample; every
    outlet sample for this window carries it as its timestamp. ``latency`` maps a stage
    name to milliseconds, like the metrics outlet. ``flags`` (C,) uint8 holds each
    channel's quality flags (``ChannelFlag`` bits); a ``rejected`` window had too many
    flagged channels to be classified, so it has no probabilities. ``display`` is False for
    a window cut only for a classifier calibrated on other windows (its own preprocessing
    and timing): the display does not show it as the signal.
    """

    index: int
    t_last: float
    channels: tuple[str, ...]
    source_channels: tuple[str, ...]
    signal: np.ndarray
    n_patches: int
    tokens: np.ndarray | None = None
    reconstruction: np.ndarray | None = None
    probabilities: np.ndarray | None = None
    class_names: tuple[str, ...] = ()
    latency: dict[str, float] = field(default_factory=dict)
    flags: np.ndarray | None = None
    rejected: bool = False
    markers: tuple[tuple[float, str], ...] = ()
    label: str | None = None
    gap: bool = False
    display: bool = True

    def flagged_channels(self) -> dict[str, tuple[str, ...]]:
        """Channel name -> names of its flags, for the channels that have any."""
        if self.flags is None:
            return {}
        return {name: flag_names(int(bits))
                for name, bits in zip(self.channels, self.flags, strict=True) if bits}


@dataclass
class PipelineStatus:
    """Counters and descriptions of a running pipeline, for the metrics outlet and display.

    ``stream_state`` is the inlet's ("starting", "streaming", "stalled", "stopped");
    ``failed`` names every pipeline thread that died, with its error: a run with one is in
    the "error" :attr:`health` whatever the stream does. ``flag_counts`` is how many
    channels of the newest window carry each flag kind; ``channel_flag_windows`` counts,
    per channel, the windows in which it was flagged; ``stream_warnings`` hold stream-level
    doubts (rate, unit) in words.
    """

    stream_name: str = ""
    source_rate: float = 0.0
    n_source_channels: int = 0
    mapping: tuple[tuple[str, str], ...] = ()
    engine: str = ""
    token_layout: tuple[int, int] = (0, 0)
    stream_state: str = "starting"
    windows_done: int = 0
    windows_dropped: int = 0
    windows_rejected: int = 0
    deadline_misses: int = 0
    inference_errors: int = 0
    markers_skipped: int = 0
    samples_received: int = 0
    samples_lost: int = 0
    gaps: int = 0
    stalls: int = 0
    queue_depth: int = 0
    measured_rate: float = float("nan")
    flag_counts: tuple[tuple[str, int], ...] = ()
    channel_flag_windows: tuple[tuple[str, int], ...] = ()
    stream_warnings: tuple[str, ...] = ()
    failed: tuple[str, ...] = ()
    last_error: str = ""

    @property
    def health(self) -> str:
        """"error" when a pipeline thread died, else the stream's state."""
        return "error" if self.failed else self.stream_state


class ResultHub:
    """Thread-safe mailbox between the pipeline and its readers (outlets, display, tests)."""

    def __init__(self, history: int = 600) -> None:
        self._lock = threading.Lock()
        self._results: deque[WindowResult] = deque(maxlen=history)
        self._status = PipelineStatus()
        self._new = threading.Condition(self._lock)

    def publish(self, result: WindowResult) -> None:
        with self._new:
            self._results.append(result)
            self._new.notify_all()

    def update_status(self, **changes: object) -> None:
        with self._lock:
            for key, value in changes.items():
                if not hasattr(self._status, key):
                    raise AttributeError(f"PipelineStatus has no field '{key}'.")
                setattr(self._status, key, value)

    def increment(self, counter: str, by: int = 1) -> None:
        with self._lock:
            setattr(self._status, counter, getattr(self._status, counter) + by)

    def status(self) -> PipelineStatus:
        with self._lock:
            return PipelineStatus(**vars(self._status))

    def latest(self) -> WindowResult | None:
        with self._lock:
            return self._results[-1] if self._results else None

    def since(self, index: int) -> list[WindowResult]:
        """Results with ``result.index > index``, oldest first (within the kept history)."""
        with self._lock:
            return [r for r in self._results if r.index > index]

    def wait_for(self, index: int, timeout: float) -> list[WindowResult]:
        """Block up to ``timeout`` seconds until a result newer than ``index`` arrives."""
        with self._new:
            self._new.wait_for(
                lambda: bool(self._results) and self._results[-1].index > index, timeout
            )
            return [r for r in self._results if r.index > index]
