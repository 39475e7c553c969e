"""EEG and marker inlets, and the acquisition thread that only pulls and stores.

Clock handling: the inlet asks liblsl for ``proc_clocksync`` (timestamps arrive already
mapped into this machine's ``local_clock``), and ``proc_dejitter`` only on request:
dejitter fits a straight line through sample count vs. time, which smooths a real gap
into a slow drift and would hide it from gap detection. The pipeline does not need it:
windows are cut by sample count at the source rate, and only the last sample's
timestamp is used to stamp outputs.

Gap detection (the only place gaps are detected): consecutive timestamps further apart
than ``gap_tolerance / rate`` count as a gap; the missing samples are estimated from the
jump and counted as lost, and ``pull`` returns where in the chunk each gap lies, so the
samples carry it onwards (ring buffer segments). Stall detection: once samples flowed, no
sample for ``stall_timeout`` seconds sets the state to ``"stalled"`` (before the first sample
it stays ``"starting"``: a source connected ahead of its first sample, as a replay is, has
not stalled); the first sample afterwards sets it back to ``"streaming"`` (a restarted
outlet with the same ``source_id`` is picked up by
liblsl's ``recover``). Rate check: the arrival rate is compared with the nominal rate
(times the replay speed a player declares in ``desc/replay/speed``), see ``RateMonitor``.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from ._lsl import ChannelInfo, StreamDescription, describe, find_streams, format_stream_list
from ._lsl import read_channels as _read_channels
from ._quality import RateMonitor

logger = logging.getLogger("neurorvq_stream")


def resolve_one(
    name: str | None,
    type: str | None,
    source_id: str | None,
    host: str | None,
    timeout: float,
) -> object:
    """Resolve exactly one stream, or explain what was seen and how to choose."""
    infos = find_streams(name=name, type=type, source_id=source_id, host=host, timeout=timeout)
    wanted = ", ".join(
        f"{k}={v!r}"
        for k, v in {"name": name, "type": type, "source_id": source_id, "host": host}.items()
        if v is not None
    )
    if len(infos) == 1:
        return infos[0]
    if not infos:
        seen = find_streams(timeout=min(timeout, 1.0))
        raise LookupError(
            f"No LSL stream matches {wanted or 'any property'} within {timeout:g} s.\n"
            f"{format_stream_list(seen)}\nPick one with --stream NAME (or type/source_id)."
        )
    raise LookupError(
        f"{len(infos)} LSL streams match {wanted}:\n{format_stream_list(infos)}\n"
        "Add source_id (or host) to choose one."
    )


@dataclass
class InletCounters:
    """What the acquisition side has seen so far; only the thread that pulls writes it, and
    ``Acquisition`` reports copies of it as the pipeline status's ``stream`` part."""

    state: str = "starting"
    samples_received: int = 0
    samples_lost: int = 0
    gaps: int = 0
    stalls: int = 0
    last_timestamp: float = float("nan")
    measured_rate: float = float("nan")
    rate_mismatch: bool = False


class EEGInlet:
    """A numeric LSL inlet with clock correction, gap and stall detection.

    ``pull()`` never blocks longer than ``poll`` seconds, and returns as soon as one sample
    is there (``min_samples=1``): no waiting for a full chunk.
    """

    def __init__(
        self,
        name: str | None = None,
        type: str | None = None,
        source_id: str | None = None,
        host: str | None = None,
        *,
        resolve_timeout: float = 5.0,
        stall_timeout: float = 1.0,
        gap_tolerance: float = 4.0,
        dejitter: bool = False,
        max_buflen: int = 30,
        rate_tolerance: float = 0.05,
        info: object | None = None,
    ) -> None:
        import pylsl

        if stall_timeout <= 0:
            raise ValueError(f"stall_timeout must be > 0 seconds, got {stall_timeout}.")
        if gap_tolerance < 1:
            raise ValueError(f"gap_tolerance is in samples and must be >= 1, got {gap_tolerance}.")
        if info is None:
            info = resolve_one(name, type, source_id, host, resolve_timeout)
        self.description: StreamDescription = describe(info)
        if self.description.sfreq <= 0:
            raise ValueError(
                f"Stream {self.description.name!r} has an irregular rate; EEG needs a nominal "
                "sampling rate. Is this a marker stream?"
            )
        if self.description.channel_format == "string":
            raise ValueError(f"Stream {self.description.name!r} carries strings, not EEG.")
        flags = pylsl.proc_clocksync | (pylsl.proc_dejitter if dejitter else 0)
        # recover only works when the outlet has a source_id; liblsl falls back silently.
        self._inlet = pylsl.StreamInlet(
            info, max_buflen=max_buflen, recover=True, processing_flags=flags
        )
        full = self._inlet.info(timeout=resolve_timeout)
        #: The resolved stream (with its uid): what a recorder records.
        self.info = full
        self.channels: list[ChannelInfo] = _read_channels(full)
        self.sfreq = self.description.sfreq
        self.n_channels = self.description.n_channels
        self.stall_timeout = float(stall_timeout)
        self._gap_s = gap_tolerance / self.sfreq
        self.counters = InletCounters()
        self._last_data = time.monotonic()
        self.replay_speed = _replay_speed(full)
        self._rate = RateMonitor(self.sfreq * self.replay_speed, rate_tolerance)

    def open(self, timeout: float = 5.0) -> None:
        """Open the stream, take the first clock offset (blocks ~0.6 s), drop the backlog."""
        self._inlet.open_stream(timeout=timeout)
        self._inlet.time_correction(timeout=timeout)
        self._inlet.flush()
        self._last_data = time.monotonic()

    def close(self) -> None:
        self._inlet.close_stream()

    def pull(self, poll: float = 0.005) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Newly arrived samples ``(n, C)`` float32, their timestamps ``(n,)`` and the
        indices of the samples that follow a gap (0: a gap before this chunk).

        Updates gap, stall and rate counters as a side effect: whoever pulls also detects.
        """
        data, ts = self._inlet.pull_chunk(
            timeout=poll, max_samples=max(64, int(self.sfreq)), min_samples=1, as_numpy=True
        )
        now = time.monotonic()
        c = self.counters
        if len(ts) == 0:
            if c.state == "streaming" and now - self._last_data > self.stall_timeout:
                c.state = "stalled"
                c.stalls += 1
                self._rate.restart()
                logger.warning(
                    "Stream %r stalled: no sample for %.2f s.",
                    self.description.name, now - self._last_data,
                )
            return np.empty((0, self.n_channels), np.float32), np.empty(0), np.empty(0, int)
        ts = np.asarray(ts, dtype=np.float64)
        breaks = self._detect_gaps(ts)
        if c.state == "stalled":
            logger.warning(
                "Stream %r resumed after %.2f s.", self.description.name, now - self._last_data
            )
        if len(breaks):
            self._rate.restart()
        self._rate.update(len(ts), now)
        c.measured_rate, c.rate_mismatch = self._rate.measured, self._rate.mismatch
        c.state = "streaming"
        self._last_data = now
        c.samples_received += len(ts)
        c.last_timestamp = float(ts[-1])
        return np.asarray(data, dtype=np.float32), ts, breaks

    def _detect_gaps(self, ts: np.ndarray) -> np.ndarray:
        """Count the gaps before and inside ``ts``; indices of the samples after each."""
        c = self.counters
        first = np.isnan(c.last_timestamp)
        joined = ts if first else np.concatenate(([c.last_timestamp], ts))
        steps = np.diff(joined)
        jumps = np.flatnonzero(steps > self._gap_s)
        for j in jumps:
            missing = max(1, round(steps[j] * self.sfreq) - 1)
            c.gaps += 1
            c.samples_lost += missing
            logger.warning(
                "Stream %r: gap of %.1f ms (~%d samples lost) before t=%.3f.",
                self.description.name, steps[j] * 1e3, missing, joined[j + 1],
            )
        return jumps + 1 if first else jumps


#: The stream type of mne-lsl's annotations (``PlayerLSL(..., annotations=True)``).
ANNOTATIONS_TYPE = "annotations"


class MarkerFormat:
    """How a marker stream's samples become ``(timestamp, label)`` events.

    Two layouts are markers: strings (the LSL convention, any stream type; the first
    channel is the label, as mne-lsl's ``annotations_encoding='string'`` sends it) and
    mne-lsl's one-hot annotations (type ``annotations``, one numeric channel per
    description, a non-zero value marks an onset: the annotation's duration, -1 for none),
    where each non-zero channel is an event labelled with the channel's name. Anything else
    (a regular-rate stream, numbers of another type) cannot be markers: ``of`` raises a
    ValueError that says what the stream is and what to pass instead.
    """

    def __init__(self, labels: tuple[str, ...] | None = None) -> None:
        """``labels``: the one-hot channels' names; None for strings."""
        self.labels = labels

    @classmethod
    def of(cls, info: object) -> MarkerFormat:
        """The format of the stream ``info`` (a full info, ``inlet.info()``, for one-hot:
        the labels are in its ``desc``), or a ValueError naming what it is instead."""
        d = describe(info)
        labels = tuple(c.label for c in _read_channels(info))
        found = cls.read(d.channel_format, d.type, d.sfreq, labels)
        if found is not None:
            return found
        what = f"a {d.sfreq:g} Hz stream" if d.sfreq > 0 else f"{d.channel_format} samples"
        raise ValueError(
            f"Stream {d.name!r} has type {d.type!r} ({what}), which cannot be markers: a "
            "marker stream sends strings (type 'Markers') or mne-lsl's annotations (type "
            f"'{ANNOTATIONS_TYPE}'). Pass the marker stream's name to --markers "
            "(markers.name); `neurorvq-stream list` shows the streams.")

    @classmethod
    def read(cls, channel_format: str, type: str, sfreq: float,
             labels: tuple[str, ...]) -> MarkerFormat | None:
        """The format of a stream so declared (live or in an XDF file); None: not markers."""
        if channel_format == "string":
            return cls()
        if sfreq == 0 and type.lower() == ANNOTATIONS_TYPE:
            return cls(labels)
        return None

    def events(self, samples: Sequence[Sequence[object]],
               stamps: Sequence[float]) -> list[tuple[float, str]]:
        """The events in pulled ``samples`` (one row per sample) stamped ``stamps``."""
        if self.labels is None:
            return [(float(t), str(s[0])) for s, t in zip(samples, stamps, strict=True)]
        return [(float(t), self.labels[k]) for s, t in zip(samples, stamps, strict=True)
                for k in np.flatnonzero(np.asarray(s, dtype=float))]


class MarkerInlet:
    """Markers (event labels) with their source timestamps, pulled without waiting.

    Found by name (or source_id) whatever the stream's type; strings and mne-lsl's
    annotations are understood (:class:`MarkerFormat`).
    """

    def __init__(
        self,
        name: str | None = None,
        type: str | None = None,
        source_id: str | None = None,
        host: str | None = None,
        *,
        resolve_timeout: float = 5.0,
    ) -> None:
        import pylsl

        info = resolve_one(name, type, source_id, host, resolve_timeout)
        self.description = describe(info)
        MarkerFormat.of(info)  # refuse a stream that cannot be markers before connecting
        self._inlet = pylsl.StreamInlet(info, recover=True, processing_flags=pylsl.proc_clocksync)
        #: The resolved stream (with its uid): what a recorder records.
        self.info = self._inlet.info(timeout=resolve_timeout)
        self.format = MarkerFormat.of(self.info)

    def open(self, timeout: float = 5.0) -> None:
        self._inlet.open_stream(timeout=timeout)
        self._inlet.time_correction(timeout=timeout)

    def pull(self) -> list[tuple[float, str]]:
        """Markers that arrived since the last call, as ``(timestamp, label)``."""
        samples, ts = self._inlet.pull_chunk(timeout=0.0, as_numpy=False)
        return self.format.events(samples, ts)

    def close(self) -> None:
        self._inlet.close_stream()


class Acquisition(threading.Thread):
    """Pulls from an :class:`EEGInlet` and hands every chunk to ``write``; nothing else.

    ``write`` is the ring buffer's writer: acquisition never waits on inference or the
    display. The thread's own CPU time is kept (``cpu_seconds``) for the benchmarks.
    """

    def __init__(
        self,
        inlet: EEGInlet,
        write: Callable[[np.ndarray, np.ndarray, np.ndarray], None],
        poll: float = 0.005,
        on_error: Callable[[BaseException], None] | None = None,
        report: Callable[[InletCounters], None] | None = None,
    ) -> None:
        super().__init__(name="neurorvq-acquisition", daemon=True)
        self.inlet = inlet
        self._write = write
        self._poll = poll
        self._on_error = on_error
        self._report = report
        self._reported: InletCounters | None = None
        self._stop_event = threading.Event()
        self.cpu_seconds = 0.0
        self.wall_seconds = 0.0
        self.error: BaseException | None = None

    def run(self) -> None:
        t0_wall, t0_cpu = time.perf_counter(), time.thread_time()
        try:
            while not self._stop_event.is_set():
                data, ts, breaks = self.inlet.pull(self._poll)
                if len(ts):
                    self._write(data, ts, breaks)
                self._report_counters()
                self.cpu_seconds = time.thread_time() - t0_cpu
                self.wall_seconds = time.perf_counter() - t0_wall
            self.inlet.counters.state = "stopped"
        except Exception as err:  # reported, never swallowed
            self.error = err
            self.inlet.counters.state = "error"
            if self._on_error is not None:
                self._on_error(err)
            else:
                logger.exception("Acquisition stopped on an error.")
        finally:
            self._report_counters()

    def _report_counters(self) -> None:
        """Hand a copy of the inlet's counters to ``report`` when they changed (this thread
        is their only writer, so the copy is consistent)."""
        c = self.inlet.counters
        if self._report is not None and c != self._reported:
            self._reported = dataclasses.replace(c)
            self._report(self._reported)

    def stop(self, timeout: float = 2.0) -> None:
        self._stop_event.set()
        self.join(timeout)


def _replay_speed(info: object) -> float:
    """The speed factor a player declares in ``desc/replay/speed`` (1 for live streams)."""
    text = info.desc().child("replay").child_value("speed")
    try:
        speed = float(text) if text else 1.0
    except ValueError:
        return 1.0
    return speed if speed > 0 else 1.0
