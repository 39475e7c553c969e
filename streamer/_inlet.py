"""EEG and marker inlets, and the acquisition thread that only pulls and stores.

Clock handling: the inlet asks liblsl for ``proc_clocksync`` (timestamps arrive already
mapped into this machine's ``local_clock``), and ``proc_dejitter`` only on request:
dejitter fits a straight line through sample count vs. time, which smooths a real gap
into a slow drift and would hide it from gap detection. The pipeline does not need it:
windows are cut by sample count at the source rate, and only the last sample's time
(on the gap timeline below) is used to stamp outputs.

Gap detection (the only place gaps are detected, ``SampleTimeline``): many amplifier apps
stamp each chunk when it arrives and back-date its samples at the nominal rate, so chunk
boundaries jitter by milliseconds while no sample is missing. Consecutive stamps are
therefore not compared with each other; every sample is placed on a count-based timeline
instead, the stamps a gap-free stream would carry (sample ``n`` at ``t0 + n / rate``).
Arrival delays are never negative, so the timeline follows the *lower envelope* of the
stamps: its offset drops at once to an earlier stamp and rises at most once per second of
samples, to the earliest stamp of that second (clock drift, a rate slightly off the nominal
one). A sample later than the timeline by more than the jitter tolerance
(``max(gap_tolerance / rate, max_jitter)``), reached by a jump from the sample before it,
is a gap: the samples that would fill the jump are counted as lost and put on the
timeline, so a late chunk followed by punctual ones is not counted twice and a real hole
(a jump that later stamps do not make up) is counted with its size, to within one chunk's
arrival delay. A sample earlier than the timeline by more than the tolerance (and
``MIN_RESET_S``) is a clock reset: a gap that lost no sample (unless it comes back by no
more than what the gaps of the last second counted: their late chunks ending). ``pull``
returns where in the chunk each gap lies, so the samples carry it onwards (ring buffer
segments): it is the only place the stream breaks, and no window spans a gap. A hole
shorter than the jitter tolerance cannot be told from a late chunk and is not counted.

Times handed on: each sample's stamp less its lateness over the envelope through it, i.e.
its place on the timeline. A chunk stamped late but judged complete (within the
tolerance, or lateness that built up in small steps) keeps its place in the stream
instead of stepping forward and back: windows over it are cut and stamped with the time
its neighbours give it. A time is earlier than its stamp by the stamp's delay over the
earliest stamps (and, for a source slower than its nominal rate, by up to the drift of one
second). liblsl's ``proc_dejitter`` (a recursive least-squares line through stamp vs.
sample index, with a half-life of ``smoothing_halftime``) and pyxdf's
``dejitter_timestamps`` (a least-squares line per segment, segments split only where
stamps jump by more than 1 s and 500 samples by default) both smooth stamps onto such a
line, which would spread a shorter hole over the line; this timeline moves a stamp back
only onto the earliest ones, never across a gap (``dejitter`` turns liblsl's on for the
stamps, the timeline still runs on them).

Stall detection: once samples flowed, no sample for ``stall_timeout`` seconds sets the
state to ``"stalled"`` (before the first sample it stays ``"starting"``: a source connected
ahead of its first sample, as a replay is, has not stalled); the first sample afterwards
sets it back to ``"streaming"`` (a restarted outlet with the same ``source_id`` is picked up
by liblsl's ``recover``). Rate check: the arrival rate is compared with the nominal rate
(times the replay speed a player declares in ``desc/replay/speed``), see ``RateMonitor``.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import NamedTuple

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
    ``Acquisition`` reports copies of it as the pipeline status's ``stream`` part.
    ``gaps`` counts every break of the stream, clock resets (no sample lost) included."""

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
        max_jitter: float = 0.02,
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
        if max_jitter < 0:
            raise ValueError(f"max_jitter is in seconds and must be >= 0, got {max_jitter}.")
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
        self.counters = InletCounters()
        self._last_data = time.monotonic()
        self.replay_speed = _replay_speed(full)
        rate = self.sfreq * self.replay_speed
        self._rate = RateMonitor(rate, rate_tolerance)
        self._timeline = SampleTimeline(rate, max(gap_tolerance / rate, max_jitter))

    def open(self, timeout: float = 5.0) -> None:
        """Open the stream, take the first clock offset (blocks ~0.6 s), drop the backlog."""
        self._inlet.open_stream(timeout=timeout)
        self._inlet.time_correction(timeout=timeout)
        self._inlet.flush()
        self._last_data = time.monotonic()

    def close(self) -> None:
        self._inlet.close_stream()

    def pull(self, poll: float = 0.005) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Newly arrived samples ``(n, C)`` float32, their times ``(n,)`` on the inlet's
        timeline (``SampleTimeline``: a stamp later than the timeline without a gap is
        moved back onto it) and the indices of the samples that follow a gap (0: a gap
        before this chunk).

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
        placed = self._place(np.asarray(ts, dtype=np.float64))
        if c.state == "stalled":
            logger.warning(
                "Stream %r resumed after %.2f s.", self.description.name, now - self._last_data
            )
        # The rate the source sends at: the samples a gap lost were sent too (a gap must not
        # pass for a slow rate, nor stop the measurement of a stream that jitters into gaps).
        self._rate.update(len(ts) + int(placed.lost.sum()), now)
        c.measured_rate, c.rate_mismatch = self._rate.measured, self._rate.mismatch
        c.state = "streaming"
        self._last_data = now
        c.samples_received += len(ts)
        c.last_timestamp = float(placed.times[-1])
        return np.asarray(data, dtype=np.float32), placed.times, placed.breaks

    def _place(self, ts: np.ndarray) -> Placement:
        """Put ``ts`` on the timeline and count its gaps (a clock reset is one that lost
        no sample: the stream breaks there all the same)."""
        c = self.counters
        placed = self._timeline.place(ts)
        for k, n in zip(placed.breaks.tolist(), placed.lost.tolist(), strict=True):
            c.gaps += 1
            c.samples_lost += n
            if n:
                logger.warning("Stream %r: gap of %d samples (%.1f ms) before t=%.3f.",
                               self.description.name, n, n / self._timeline.rate * 1e3, ts[k])
            else:
                logger.warning("Stream %r: stamps went back (a clock reset) before t=%.3f.",
                               self.description.name, ts[k])
        return placed


#: Stamps that jump back below the timeline by less are not a clock reset: a source that
#: sends faster than it declares, stamped by liblsl (the last sample on arrival, the others
#: back-dated at the declared rate), overlaps its chunks' stamps (by 62 ms sending 256 Hz
#: as 128 Hz in 16-sample chunks) and is a wrong rate (``RateMonitor``), not a break.
MIN_RESET_S = 0.1


class Placement(NamedTuple):
    """A chunk placed on the timeline: ``breaks`` (indices of the samples after each gap),
    ``lost`` (samples lost in each; 0 where the stamps went back, a clock reset) and
    ``times``, each sample's place on the timeline (its stamp less its lateness)."""

    breaks: np.ndarray
    lost: np.ndarray
    times: np.ndarray


class SampleTimeline:
    """The stamps a gap-free stream would carry, and the gaps that depart from it.

    See the module docstring. ``place(ts)`` takes each chunk's stamps in order and returns
    where its gaps are, how many samples each lost, and the samples' times on the timeline.
    """

    def __init__(self, rate: float, tolerance_s: float) -> None:
        if rate <= 0 or tolerance_s <= 0:
            raise ValueError(f"SampleTimeline needs rate > 0 and tolerance > 0, got {rate} "
                             f"and {tolerance_s}.")
        self.rate = float(rate)
        self.tolerance_s = float(tolerance_s)
        #: How far below the timeline a stamp must jump to be a clock reset.
        self.reset_s = max(self.tolerance_s, MIN_RESET_S)
        self._count = 0  # timeline position of the next sample (lost samples included)
        self._offset = np.nan  # lower envelope of stamp - count / rate
        self._last = np.nan  # stamp of the previous sample
        self._block_end = 0  # count at which the envelope may rise to the block's floor
        self._block_floor = np.inf
        # What the gaps of the last second counted as lost, in seconds: stamps that come
        # back by that much are those gaps' late chunks ending, not a clock reset.
        self._slack = 0.0
        self._slack_end = 0  # count at which the slack lapses

    def place(self, ts: np.ndarray) -> Placement:
        """Put the next chunk's stamps on the timeline (see :class:`Placement`)."""
        ts = np.asarray(ts, dtype=np.float64)
        if len(ts) == 0:
            return Placement(np.empty(0, int), np.empty(0, int), ts)
        if np.isnan(self._offset):
            self._offset, self._last = ts[0] - self._count / self.rate, ts[0]
            self._block_end = self._count + round(self.rate)
        start_offset = self._offset
        counts = self._count + np.arange(len(ts))
        lateness = ts - counts / self.rate
        steps = np.diff(ts, prepend=self._last)
        breaks: list[int] = []
        lost: list[int] = []
        start = 0
        while True:
            # The envelope before each sample: the offset, lowered by earlier samples.
            envelope = np.minimum.accumulate(np.concatenate(([self._offset], lateness[start:])))
            excess = lateness[start:] - envelope[:-1]
            slack = np.where(counts[start:] < self._slack_end, self._slack, 0.0)
            # A jump later than the timeline is a gap; a jump back below it (further than
            # a recent gap's late chunk can come back), a clock reset.
            jumped = (excess > self.tolerance_s) & (steps[start:] > self.tolerance_s)
            reset = excess < -self.reset_s - slack
            hits = np.flatnonzero(jumped | reset)
            if not len(hits):
                self._offset = float(envelope[-1])
                break
            i = int(hits[0])
            k = start + i
            n = max(1, round(excess[i] * self.rate)) if jumped[i] else 0
            breaks.append(k)
            lost.append(n)
            # The lost samples take their place on the timeline.
            counts[k:] += n
            lateness[k:] -= n / self.rate
            if n:
                self._slack = float(slack[i]) + n / self.rate
                self._slack_end = int(counts[k]) + round(self.rate)
            self._offset = min(float(envelope[i]), float(lateness[k]))
            start = k + 1
        self._follow_drift(lateness)
        self._count = int(counts[-1]) + 1
        self._last = float(ts[-1])
        # Each sample stands where the envelope through it puts it: a stamp later than the
        # timeline (within the tolerance, or lateness that built up slowly) moves back onto it.
        through = np.minimum.accumulate(np.concatenate(([start_offset], lateness)))[1:]
        return Placement(np.asarray(breaks, int), np.asarray(lost, int),
                         ts - (lateness - through))

    def _follow_drift(self, lateness: np.ndarray) -> None:
        """Let the envelope rise to the earliest sample of each second of samples: a slow
        rise is clock drift (or a rate a little off), never a gap."""
        self._block_floor = min(self._block_floor, float(lateness.min()))
        if self._count + len(lateness) >= self._block_end:
            self._offset = max(self._offset, self._block_floor)
            self._block_floor = np.inf
            self._block_end = self._count + len(lateness) + round(self.rate)


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
