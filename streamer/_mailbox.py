"""A single slot between the processing and inference threads: only the newest window waits.

A slow model must never build a queue: putting a window over an unread one replaces it
(the caller counts the old one as dropped), so inference always takes the freshest data.
"""

from __future__ import annotations

import dataclasses
import threading
from dataclasses import dataclass

from ._windows import Window


@dataclass(frozen=True)
class QueuedWindow:
    """A window on its way to inference, with the processing time it cost and when it left."""

    window: Window
    preprocess_s: float
    posted: float


class Mailbox:
    """Single slot holding the newest window; putting over a full slot drops the old one."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._item: QueuedWindow | None = None

    def put(self, item: QueuedWindow) -> bool:
        """Store ``item``; True when an unread older window was replaced (dropped)."""
        with self._cond:
            old = self._item
            if old is not None and old.window.gap and not item.window.gap:
                # The gap flag must reach a reader even when its window is dropped.
                item = dataclasses.replace(item, window=dataclasses.replace(item.window, gap=True))
            self._item = item
            self._cond.notify()
            return old is not None

    def take(self, timeout: float) -> QueuedWindow | None:
        """The waiting window (emptying the slot), or None after ``timeout`` seconds."""
        with self._cond:
            if self._item is None:
                self._cond.wait(timeout)
            item, self._item = self._item, None
            return item

    @property
    def depth(self) -> int:
        return int(self._item is not None)
