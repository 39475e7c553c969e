"""Replay a recording (EDF/BDF/FIF via MNE, XDF via pyxdf) as live LSL streams.

One EEG outlet with channel metadata (labels, unit as in the file, type, positions when
a montage gives them) and one string marker outlet built from the file's annotations (an
XDF file's marker streams: strings, or mne-lsl's annotations as ``MarkerFormat`` reads them).

Timestamps: at start the player takes ``t0 = local_clock()``; sample ``n`` is stamped
``t0 + n / (sfreq * speed)`` and pushed once that time has come, and a marker at file
time ``o`` is stamped ``t0 + o / speed``. So stamps always follow this machine's clock
(end-to-end latencies stay meaningful) while the nominal rate stays the file's: with
``speed > 1`` consumers see samples ``speed`` times closer than ``1/sfreq``. Looping keeps
counting ``n``, so time never jumps back.
"""

from __future__ import annotations

import logging
import threading
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ._inlet import MarkerFormat
from ._lsl import ChannelInfo, write_channels
from ._xdf import load_xdf

if TYPE_CHECKING:
    pass

logger = logging.getLogger("neurorvq_stream")

_UNIT_NAMES = {"µV": "microvolts", "uV": "microvolts", "mV": "millivolts", "V": "volts"}
_UNIT_SCALE = {"microvolts": 1e6, "millivolts": 1e3, "volts": 1.0}


@dataclass
class Recording:
    """Samples ``(n, C)`` in ``unit`` with channel metadata and ``(onset_s, label)`` events."""

    data: np.ndarray
    sfreq: float
    channels: list[ChannelInfo]
    events: list[tuple[float, str]]

    @property
    def duration(self) -> float:
        return self.data.shape[0] / self.sfreq


class RecordingError(ValueError):
    """A file the player cannot replay; the message names the file, the fault and the fix."""


# Formats the player replays, by extension: MNE reads the first four, pyxdf reads XDF.
FORMATS = {".edf": "EDF", ".bdf": "BDF", ".fif": "FIF", ".fif.gz": "FIF", ".xdf": "XDF"}


def load_recording(
    path: str | Path,
    montage: str | None = None,
    tmin: float = 0.0,
    tmax: float | None = None,
) -> Recording:
    """Read a file into a :class:`Recording`, in the file's own unit where it has one.

    A file that cannot be replayed raises :class:`RecordingError`. What the reader only
    warns about is logged, never hidden: an EDF/BDF file shorter than its header says
    (a recording stopped abnormally, a copy cut short) is played as far as it goes, with
    a warning that says how much is missing.
    """
    path = Path(path)
    name = repr(str(path))
    if path.is_dir():
        raise RecordingError(
            f"Recording {name} is a folder; pass one recording file inside it "
            f"({_format_list()})."
        )
    if not path.is_file():
        raise FileNotFoundError(f"Recording {name} does not exist.")
    kind = next((k for ext, k in FORMATS.items() if path.name.lower().endswith(ext)), None)
    if kind is None:
        raise RecordingError(
            f"Recording {name} has an extension the player does not read; it replays "
            f"{_format_list()} (convert other formats with MNE: raw.export or raw.save)."
        )
    if path.stat().st_size == 0:
        raise RecordingError(f"Recording {name} is empty (0 bytes).")
    if kind == "XDF":
        with path.open("rb") as f:
            if f.read(4) != b"XDF:":
                raise RecordingError(
                    f"Recording {name} is not an XDF file (it does not start with the XDF "
                    "mark 'XDF:'); is it another format renamed .xdf?"
                )
        return _load_xdf(path, tmin, tmax)
    import mne

    cut = _edf_cut_short(path)
    if cut is not None:
        logger.warning(
            "Recording %s is cut short: its header declares %.1f s, the file holds %.1f s "
            "(stopped abnormally, or an incomplete copy); using the %.1f s that are there.",
            name, cut[0], cut[1], cut[1])
    skip = _CUT_CONSEQUENCES if cut is not None else ()
    with _reading(name, kind, skip):
        raw = mne.io.read_raw(path, preload=False, verbose="warning")
    with _logged_warnings(name, skip):
        raw.crop(tmin=tmin, tmax=min(tmax, raw.times[-1]) if tmax is not None else None)
        raw.pick(["eeg", "eog", "ecg", "emg", "misc", "bio"], exclude=())
        if montage is not None:
            raw.set_montage(montage, on_missing="warn", verbose="warning")
    orig = getattr(raw, "_orig_units", None) or {}
    channels, scales = [], []
    for ch, ch_type in zip(raw.info["chs"], raw.get_channel_types(), strict=True):
        unit = _UNIT_NAMES.get(orig.get(ch["ch_name"], "V"), "volts")
        loc = np.asarray(ch["loc"][:3], dtype=float)
        location = None
        if np.all(np.isfinite(loc)) and np.any(loc != 0):
            location = tuple(float(v) for v in loc * 1e3)  # XDF convention: millimetres
        channels.append(ChannelInfo(ch["ch_name"], unit, ch_type.upper(), location))
        scales.append(_UNIT_SCALE[unit])
    with _reading(name, kind):
        samples = raw.get_data()
    data = (samples.T * np.asarray(scales)).astype(np.float32)
    events = [
        (float(a["onset"] - raw.first_time), str(a["description"]))
        for a in raw.annotations
        if not str(a["description"]).lower().startswith(("bad", "edge", "boundary"))
    ]
    return Recording(data, float(raw.info["sfreq"]), channels, events)


def _format_list() -> str:
    kinds: dict[str, list[str]] = {}
    for ext, kind in FORMATS.items():
        kinds.setdefault(kind, []).append(ext)
    return ", ".join(f"{kind} ({' '.join(exts)})" for kind, exts in kinds.items())


class _Silence(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return False


@contextmanager
def _logged_warnings(name: str, skip: tuple[str, ...] = ()) -> Iterator[None]:
    """Pass on what MNE warns about while reading (a damaged tag, annotations dropped),
    except warnings containing one of ``skip`` (already said in other words)."""
    mne_logger = logging.getLogger("mne")  # MNE logs each warning too: said once, here
    silence = _Silence()
    mne_logger.addFilter(silence)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            yield
        finally:
            mne_logger.removeFilter(silence)
            for warning in caught:
                if not any(part in str(warning.message) for part in skip):
                    logger.warning("Reading recording %s: %s", name, warning.message)


@contextmanager
def _reading(name: str, kind: str, skip: tuple[str, ...] = ()) -> Iterator[None]:
    """Turn a reader's failure on a damaged file into one RecordingError naming it."""
    try:
        with _logged_warnings(name, skip):
            yield
    except Exception as err:  # MNE's readers fail with whatever error their parser hit
        logger.debug("MNE could not read %s.", name, exc_info=True)
        detail = str(err).strip().splitlines()[0] if str(err).strip() else "no detail"
        raise RecordingError(
            f"Recording {name} is not a readable {kind} file ({type(err).__name__}: {detail}); "
            "is it damaged or cut short, or another format with this extension?"
        ) from err


#: What MNE warns about an EDF/BDF file cut short, said better in the one cut-short line.
_CUT_CONSEQUENCES = ("Number of records from the header does not match the file size",
                     "annotation(s) that were outside data range",
                     "annotation(s) that were expanding outside the data range")


def _edf_cut_short(path: Path) -> tuple[float, float] | None:
    """``(seconds the header declares, seconds the file holds)`` of an EDF/BDF file whose
    data records stop before the number its header declares; None otherwise.

    MNE (like edfio) silently takes the length from the file size when they differ. The
    header fields read are its size (bytes 184-192), the number of data records (236-244,
    -1 while still recording), the record duration (244-252), the number of signals
    (252-256) and each signal's samples per record (8 bytes each, after 216 per signal).
    """
    if path.suffix.lower() not in (".edf", ".bdf"):
        return None
    with path.open("rb") as f:
        fixed = f.read(256)
        try:
            n_signals = int(fixed[252:256].decode("ascii"))
            f.seek(256 + 216 * n_signals)
            per_record = [int(f.read(8).decode("ascii")) for _ in range(n_signals)]
            header_bytes = int(fixed[184:192].decode("ascii"))
            n_records = int(fixed[236:244].decode("ascii"))
            record_s = float(fixed[244:252].decode("ascii"))
        except ValueError:
            return None
    record_bytes = sum(per_record) * (3 if path.suffix.lower() == ".bdf" else 2)
    present = (path.stat().st_size - header_bytes) // max(record_bytes, 1)
    if n_records <= 0 or present >= n_records:
        return None
    return n_records * record_s, present * record_s


def _load_xdf(path: Path, tmin: float, tmax: float | None) -> Recording:
    """The recording's EEG stream and every marker stream, as pyxdf aligns them.

    Markers are placed at their position among the EEG's own (clock-corrected, dejittered)
    timestamps, so they stay on the samples they were recorded with even where the
    amplifier's true rate drifts from the nominal one the player replays at.
    """
    try:
        streams, _ = load_xdf(path)
    except Exception as err:
        raise ValueError(f"Cannot read XDF {str(path)!r} ({err}).") from err
    eeg = _xdf_eeg_stream(streams, path)
    sfreq = float(eeg["info"]["nominal_srate"][0])
    times = np.asarray(eeg["time_stamps"], dtype=float)
    since_first = times - times[0]
    keep = np.flatnonzero((since_first >= tmin)
                          & ((since_first <= tmax) if tmax is not None else True))
    if len(keep) == 0:
        raise ValueError(f"XDF {str(path)!r}: nothing between tmin={tmin} and tmax={tmax}.")
    data = np.asarray(eeg["time_series"], dtype=np.float32)[keep]
    channels = _xdf_channels(eeg, data.shape[1])
    events = []
    for s in streams:
        found = None if _is_pipeline_output(s) else _xdf_marker_format(s)
        if found is None or len(s["time_stamps"]) == 0:
            continue  # a pipeline's own decisions are strings too, but not markers
        stamped = [(t, label) for t, label in found.events(s["time_series"], s["time_stamps"])
                   if times[keep[0]] <= t <= times[keep[-1]]]
        position = np.interp([t for t, _ in stamped], times[keep], np.arange(len(keep)))
        events += [(float(p / sfreq), label)
                   for p, (_, label) in zip(position, stamped, strict=True)]
    return Recording(data, sfreq, channels, sorted(events))


def _is_pipeline_output(stream: dict) -> bool:
    desc = (stream["info"].get("desc") or [None])[0] or {}
    return "neurorvq" in desc


def _xdf_marker_format(stream: dict) -> MarkerFormat | None:
    """How a recorded stream's samples are markers (strings, mne-lsl's annotations, or
    numeric codes on a stream typed Markers); None for a stream that holds none."""
    info = stream["info"]
    rate = float(info["nominal_srate"][0])
    if info["type"][0].lower() == "markers" and rate == 0:
        return MarkerFormat()  # the first channel's value is the label, numbers too
    labels = tuple(c.label for c in _xdf_channels(stream, int(info["channel_count"][0])))
    return MarkerFormat.read(info["channel_format"][0], info["type"][0], rate, labels)


def _xdf_eeg_stream(streams: list[dict], path: Path) -> dict:
    """The amplifier's stream: regular, numeric, not one of our outlets; EEG type first."""
    candidates = [s for s in streams
                  if s["info"]["channel_format"][0] != "string"
                  and float(s["info"]["nominal_srate"][0]) > 0
                  and len(s["time_stamps"]) > 0 and not _is_pipeline_output(s)]
    if not candidates:
        raise ValueError(f"XDF {str(path)!r} holds no regular-rate numeric stream to replay.")
    eeg_typed = [s for s in candidates if s["info"]["type"][0].lower() == "eeg"] or candidates
    chosen = max(eeg_typed, key=lambda s: int(s["info"]["channel_count"][0]))
    if len(candidates) > 1:
        logger.info("Replaying XDF stream %r (of %s).", chosen["info"]["name"][0],
                    ", ".join(repr(s["info"]["name"][0]) for s in candidates))
    return chosen


def _xdf_channels(stream: dict, n_ch: int) -> list[ChannelInfo]:
    """Channel metadata from the stream header, units named as the EDF path names them."""
    desc = (stream["info"].get("desc") or [None])[0] or {}
    channels: list[ChannelInfo] = []
    for k, ch in enumerate(((desc.get("channels") or [{}])[0] or {}).get("channel", [])):
        loc = (ch.get("location") or [None])[0]
        location = None
        if loc:
            try:
                location = tuple(float(loc[a][0]) for a in ("X", "Y", "Z"))
            except (KeyError, ValueError, IndexError, TypeError):
                location = None
        unit = (ch.get("unit") or [""])[0] or ""
        channels.append(ChannelInfo(
            (ch.get("label") or [f"ch{k + 1}"])[0] or f"ch{k + 1}",
            _UNIT_NAMES.get(unit, unit),
            (ch.get("type") or [""])[0] or "",
            location,
        ))
    return channels[:n_ch] + [ChannelInfo(f"ch{k + 1}") for k in range(len(channels), n_ch)]


class Player(threading.Thread):
    """Streams a :class:`Recording` in real time (``speed`` x) on LSL; loops on request."""

    def __init__(
        self,
        recording: Recording,
        name: str = "NeuroRVQ-Player",
        source_id: str | None = None,
        speed: float = 1.0,
        loop: bool = False,
        chunk_seconds: float = 0.01,
        progress: bool = False,
    ) -> None:
        super().__init__(name="neurorvq-player", daemon=True)
        import pylsl

        if speed <= 0:
            raise ValueError(f"speed must be > 0, got {speed}.")
        if recording.data.shape[0] == 0:
            raise ValueError("The recording to play is empty (check tmin/tmax).")
        self.recording = recording
        self.speed = float(speed)
        self.loop = loop
        self.progress = progress
        self.stream_name = name
        self.source_id = source_id or f"{name}-eeg"
        n_ch = recording.data.shape[1]
        info = pylsl.StreamInfo(name, "EEG", n_ch, recording.sfreq, "float32", self.source_id)
        write_channels(info, recording.channels)
        info.desc().append_child_value("manufacturer", "neurorvq-stream player")
        # Samples arrive `speed` times faster than the nominal rate: say so, so that a
        # consumer's rate check expects it (streamer._inlet).
        info.desc().append_child("replay").append_child_value("speed", f"{self.speed:g}")
        self._chunk = max(1, round(chunk_seconds * recording.sfreq * self.speed))
        self._eeg = pylsl.StreamOutlet(info, chunk_size=self._chunk)
        minfo = pylsl.StreamInfo(f"{name}-Markers", "Markers", 1, pylsl.IRREGULAR_RATE,
                                 "string", f"{self.source_id}-markers")
        self._markers = pylsl.StreamOutlet(minfo)
        self._stop_event = threading.Event()
        self.samples_pushed = 0
        self.markers_pushed = 0
        self.t0: float | None = None

    def stop(self, timeout: float = 2.0) -> None:
        self._stop_event.set()
        if self.is_alive():
            self.join(timeout)

    def run(self) -> None:
        import pylsl

        rec = self.recording
        n_file = rec.data.shape[0]
        rate = rec.sfreq * self.speed
        events = sorted(rec.events)
        bar = None
        if self.progress:
            from tqdm import tqdm

            bar = tqdm(total=None if self.loop else n_file, unit="sample",
                       desc=f"Playing {self.stream_name}")
        t0 = self.t0 = pylsl.local_clock() + 0.05
        n = 0
        next_event = 0
        while not self._stop_event.is_set():
            if not self.loop and n >= n_file:
                break
            loop_k, pos = divmod(n, n_file)
            stop = min(pos + self._chunk, n_file)
            count = stop - pos
            stamps = t0 + (n + np.arange(count)) / rate
            wait = stamps[-1] - pylsl.local_clock()
            if wait > 0 and self._stop_event.wait(wait):
                break
            while events and next_event < len(events) * (loop_k + 1):
                k_loop, k = divmod(next_event, len(events))
                onset = events[k][0] + k_loop * rec.duration
                if onset * rec.sfreq >= n + count:
                    break
                self._markers.push_sample([events[k][1]], t0 + onset / self.speed)
                self.markers_pushed += 1
                next_event += 1
            self._eeg.push_chunk(rec.data[pos:stop], stamps.tolist())
            n += count
            self.samples_pushed = n
            if bar is not None:
                bar.update(count)
        if bar is not None:
            bar.close()
