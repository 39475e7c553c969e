"""Read an XDF file with pyxdf, saying in one line when it was cut short mid-chunk.

A recorder killed outright (or a copy that stopped early) leaves a file whose last chunk
is incomplete. pyxdf then logs a "file corruption" error and several warnings, or raises
when the cut falls inside a clock-offset chunk. Here the chunk lengths are walked first
(a seek per chunk, no data read), the cut is reported once with both lengths, and pyxdf
reads only the complete chunks before it, so everything that was recorded is kept.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

logger = logging.getLogger("neurorvq_stream")

_MAGIC = b"XDF:"
#: Chunk tags whose content starts with a stream id: StreamHeader, Samples, ClockOffset,
#: StreamFooter.
STREAM_TAGS = (2, 3, 4, 6)


def chunks(path: Path) -> Iterator[tuple[int, int, int, int | None]]:
    """``(start, end, tag, stream id or None)`` of each complete chunk, read with a seek
    per chunk; stops at the first incomplete one.

    Each chunk starts with a length (1 byte saying how many bytes hold it: 1, 4 or 8, then
    the length, little-endian) that counts everything after it: a 2-byte tag, then (for
    stream headers, samples, clock offsets and footers) a 4-byte stream id.
    """
    size = path.stat().st_size
    pos = len(_MAGIC)
    with path.open("rb") as f:
        while pos < size:
            f.seek(pos)
            head = f.read(1)
            width = head[0] if head else 0
            length_bytes = f.read(width) if width in (1, 4, 8) else b""
            if width not in (1, 4, 8) or len(length_bytes) != width:
                return
            end = pos + 1 + width + int.from_bytes(length_bytes, "little")
            if end > size:
                return
            tag = int.from_bytes(f.read(2), "little")
            stream = int.from_bytes(f.read(4), "little") if tag in STREAM_TAGS else None
            yield pos, end, tag, stream
            pos = end


def complete_length(path: Path) -> tuple[int, int]:
    """``(bytes of complete chunks, bytes the file would need)``; equal for a whole file."""
    size = path.stat().st_size
    complete = len(_MAGIC)
    for _, end, _, _ in chunks(path):
        complete = end
    if complete == size:
        return size, size
    with path.open("rb") as f:
        f.seek(complete)
        width = f.read(1)[0]
        length = int.from_bytes(f.read(width), "little") if width in (1, 4, 8) else 0
    return complete, max(complete + 1 + width + length, size + 1)


class _Prefix(io.RawIOBase):
    """The first ``limit`` bytes of a file, as a readable binary file."""

    def __init__(self, path: Path, limit: int) -> None:
        self._file = path.open("rb")
        self._limit = limit

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        if whence == io.SEEK_END:
            offset, whence = self._limit + offset, io.SEEK_SET
        return self._file.seek(offset, whence)

    def tell(self) -> int:
        return self._file.tell()

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer)[: max(0, self._limit - self._file.tell())]
        return self._file.readinto(view)

    def close(self) -> None:
        self._file.close()
        super().close()


def load_xdf(path: str | Path, **options: Any) -> tuple[list[dict], dict]:
    """``pyxdf.load_xdf(path, **options)`` on the file's complete chunks (see above)."""
    import pyxdf

    path = Path(path)
    complete, needed = complete_length(path)
    if complete == needed:
        return pyxdf.load_xdf(str(path), **options)
    size = path.stat().st_size
    logger.warning(
        "Recording %r is cut short: the file has %d bytes, its last chunk (at byte %d) "
        "needs %d (the recorder was stopped abnormally or the copy is incomplete); reading "
        "the %d bytes of complete chunks.", str(path), size, complete, needed, complete)
    # pyxdf would add that the clock-offset segments (their last ones cut off) differ.
    pyxdf_logger = logging.getLogger("pyxdf.pyxdf")
    level = pyxdf_logger.level
    pyxdf_logger.setLevel(logging.ERROR)
    try:
        with io.BufferedReader(_Prefix(path, complete)) as f:
            return pyxdf.load_xdf(f, **options)
    finally:
        pyxdf_logger.setLevel(level)
