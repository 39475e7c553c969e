"""What the pipeline produces for each window, and where readers pick it up.

The runner writes, the LSL outlets and the Qt display read. Readers never block the
writer: the hub keeps the newest results in a bounded history and hands out copies of
references only (results are immutable once published).
"""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class WindowResult:
    """Everything computed for one window of the live stream.

    ``t_last`` is the source LSL time (clock-corrected) of the window's last sample; every
    outlet sample for this window carries it as its timestamp. ``latency`` maps a stage
    name to milliseconds, like the metrics outlet.
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
    channel_flags: dict[str, str] = field(default_factory=dict)
    markers: tuple[tuple[float, str], ...] = ()
    label: str | None = None
    gap: bool = False


@dataclass
class PipelineStatus:
    """Counters and descriptions of a running pipeline, for the metrics outlet and display."""

    stream_name: str = ""
    source_rate: float = 0.0
    n_source_channels: int = 0
    mapping: tuple[tuple[str, str], ...] = ()
    engine: str = ""
    stream_state: str = "starting"
    windows_done: int = 0
    windows_dropped: int = 0
    deadline_misses: int = 0
    inference_errors: int = 0
    samples_received: int = 0
    samples_lost: int = 0
    gaps: int = 0
    stalls: int = 0
    queue_depth: int = 0
    last_error: str = ""


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
