"""Between the processing and inference threads: the newest sliding window, and events.

A slow model must never build a queue of sliding windows: putting one over an unread one
replaces it (the caller counts the old one as dropped), so inference always takes the
freshest data. Marker-locked windows are events a BCI must answer (each trial once), so
they queue in order and are taken first; they are few, one per marker.
"""

from __future__ import annotations

import dataclasses
import threading
from collections import deque
from dataclasses import dataclass

from ._windows import Window


@dataclass(frozen=True)
class QueuedWindow:
    """A window on its way to inference, with the processing time it cost and when it left."""

    window: Window
    preprocess_s: float
    posted: float


class Mailbox:
    """One slot for the newest sliding window, a queue for marker-locked ones."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._item: QueuedWindow | None = None
        self._events: deque[QueuedWindow] = deque()

    def put(self, item: QueuedWindow) -> bool:
        """Store ``item``; True when an unread older sliding window was replaced (dropped)."""
        with self._cond:
            if item.window.label is not None:
                self._events.append(item)
                self._cond.notify()
                return False
            old = self._item
            if old is not None and old.window.gap and not item.window.gap:
                # The gap flag must reach a reader even when its window is dropped.
                item = dataclasses.replace(item, window=dataclasses.replace(item.window, gap=True))
            self._item = item
            self._cond.notify()
            return old is not None

    def take(self, timeout: float) -> QueuedWindow | None:
        """The oldest event, else the waiting sliding window; None after ``timeout`` s."""
        with self._cond:
            if self._item is None and not self._events:
                self._cond.wait(timeout)
            if self._events:
                return self._events.popleft()
            item, self._item = self._item, None
            return item

    @property
    def depth(self) -> int:
        """Windows waiting for inference."""
        return int(self._item is not None) + len(self._events)
