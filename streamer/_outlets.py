"""The four result outlets, each with full LSL metadata, stamped in the source clock.

Every sample a window produces carries the source LSL time (clock-corrected) of that
window's last sample, so a consumer can line predictions up with the EEG and markers it
records itself (LabRecorder, mne-lsl) without knowing our processing delay.

Names and source_ids are derived from the input stream (``<input>-NeuroRVQ-Predictions``,
source_id ``<input source_id>-neurorvq-predictions``) unless configured: two pipelines on
one network (two rooms, hyperscanning) stay apart, and the same input gives the same
identities after a restart, so liblsl's ``recover`` reconnects consumers to the right one.

No name or source_id is ever published twice (``claim_identity``). A recorded session
replayed by another tool (pyxdf's ``playback_lsl``) re-publishes the old outlets under
their old names and source_ids next to the replayed EEG, so the identity derived from the
input's name is then taken. The run's own identity tells them apart: the uid of the input
stream it reads (a new one for every replay; the same for a pipeline restarted on a running
amplifier) becomes a tag, ``<input>-NeuroRVQ-<tag>-Predictions``. Outlets that say in
their metadata (``desc/neurorvq/source_uid``) that they come from this very input are a
second pipeline on the same stream, which is refused, as is a configured identity that is
taken: the user named it and gets it or an error.

The reconstruction has its own stream type, ``Reconstruction``, so tools that take "the
first EEG stream" still find the amplifier.

Decisions travel as strings beside the numeric predictions (``Decisions``, one sample per
classified or rejected window, stamped like its prediction): the decided class (or
"undecided", "rejected"), its confidence, the class probabilities (comma-separated, in the
predictions outlet's channel order), the label and LSL time of the marker that opened the
trial (empty for sliding windows) and the window's index. A string stream, not
extra numeric channels, because a label is text and an LSL time needs more digits than a
float32 channel holds; any consumer (a stimulus program, LabRecorder) pairs a decision
with its trial by the marker's own label and time, without timing rules of its own.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from neurorvq_stream.engines import MODEL_RATE

from ._lsl import ChannelInfo, describe, find_streams, write_channels
from ._models import BoundDecoder
from ._quality import FLAG_NAMES, count_by_kind
from ._results import PipelineStatus, WindowResult

logger = logging.getLogger("neurorvq_stream")

KINDS = ("Predictions", "Decisions", "Tokens", "Reconstruction", "Metrics")
#: Channels of the decisions outlet (strings), in order.
DECISION_CHANNELS = ("decision", "confidence", "probabilities", "trial", "trial_time",
                     "window")

#: Latency stages reported per window (milliseconds), in metrics channel order.
STAGES = ("preprocess", "wait", "inference", "end_to_end")
#: Status counters reported on the metrics outlet, in channel order.
COUNTERS = (
    "windows_done",
    "windows_dropped",
    "windows_rejected",
    "deadline_misses",
    "inference_errors",
    "markers_skipped",
    "queue_depth",
    "samples_lost",
    "gaps",
    "stalls",
)


@dataclass(frozen=True)
class OutletIdentity:
    """Name and source_id prefixes of one pipeline's outlets."""

    name: str
    source_id: str

    @classmethod
    def derive(cls, input_name: str, input_source_id: str, name: str | None = None,
               source_id: str | None = None) -> OutletIdentity:
        """Configured prefixes, or ones derived from the input stream (stable by design)."""
        return cls(name or f"{input_name}-NeuroRVQ",
                   source_id or f"{input_source_id or input_name}-neurorvq")

    def stream_name(self, kind: str) -> str:
        return f"{self.name}-{kind}"

    def stream_source_id(self, kind: str) -> str:
        return f"{self.source_id}-{kind.lower()}"

    def tagged(self, tag: str) -> OutletIdentity:
        """This identity told apart by ``tag`` (``<name>-<tag>-<Kind>``)."""
        return OutletIdentity(f"{self.name}-{tag}", f"{self.source_id}-{tag}")

    def holders(self, infos: list[object]) -> list[object]:
        """The streams in ``infos`` that already carry one of this identity's names or
        source_ids (any kind: an outlet not opened in one run may be open in another)."""
        names = {self.stream_name(kind) for kind in KINDS}
        ids = {self.stream_source_id(kind) for kind in KINDS}
        return [i for i in infos if i.name() in names or i.source_id() in ids]


def run_tag(input_uid: str) -> str:
    """The short tag of the input stream instance a run reads (its LSL uid)."""
    return input_uid.replace("-", "")[:8]


def claim_identity(derived: OutletIdentity, configured: bool, input_name: str,
                   input_uid: str, timeout: float = 1.0) -> OutletIdentity:
    """The identity this run publishes under, free on the network (module docstring).

    ``derived`` comes from the input stream, or from the configuration when
    ``configured``; ``input_uid`` is the uid of the input stream this run reads.
    """
    seen = find_streams(timeout=timeout)
    holders = derived.holders(seen)
    if not holders:
        return derived
    if not configured and not any(_reads(info, input_uid, timeout) for info in holders):
        own = derived.tagged(run_tag(input_uid))
        if not own.holders(seen):
            logger.warning(
                "Streams named like this run's outlets are already published (%s: a replayed "
                "session?); this run publishes %s instead.",
                ", ".join(sorted({i.name() for i in holders})), own.stream_name("*"))
            return own
        holders = own.holders(seen)
    d = describe(holders[0])
    raise ValueError(
        f"Another program already publishes an LSL stream with source_id {d.source_id!r} "
        f"(name {d.name!r}; is a second pipeline running on {input_name!r}?). Give this run "
        "its own outlets.name and outlets.source_id.")


def _reads(info: object, input_uid: str, timeout: float) -> bool:
    """Whether the stream ``info`` is a pipeline's outlet on the input stream ``input_uid``
    (its ``desc/neurorvq/source_uid``; replayed outlets lose or change it)."""
    import pylsl

    inlet = pylsl.StreamInlet(info)
    try:
        full = inlet.info(timeout=timeout)
    except RuntimeError:  # pylsl's TimeoutError or LostError
        return False  # gone or not answering: not a live pipeline
    finally:
        inlet.close_stream()
    return full.desc().child("neurorvq").child_value("source_uid") == input_uid


def decision_sample(result: WindowResult) -> list[str]:
    """The decisions outlet's sample for ``result`` (see ``DECISION_CHANNELS``).

    Probabilities are written with 9 significant digits, so they read back as the very
    float32 values of the predictions outlet.
    """
    p = None if result.probabilities is None else np.asarray(result.probabilities, np.float32)
    return [result.decision or "", f"{float(p.max()):.4f}" if p is not None else "",
            ",".join(f"{float(v):.9g}" for v in p) if p is not None else "",
            result.label or "",
            f"{result.marker_time:.6f}" if result.marker_time is not None else "",
            str(result.index)]


@dataclass(frozen=True)
class Decision:
    """One sample of a decisions outlet, read back (``read_decision``)."""

    decision: str
    confidence: float
    probabilities: np.ndarray | None
    marker: str | None
    marker_time: float | None
    window: int


def read_decision(sample: list[str]) -> Decision:
    """Parse a decisions-outlet sample (a live inlet's, or a recording's row)."""
    decision, confidence, probabilities, marker, marker_time, window = (str(v) for v in sample)
    return Decision(
        decision, float(confidence) if confidence else float("nan"),
        np.array([float(v) for v in probabilities.split(",")]) if probabilities else None,
        marker or None, float(marker_time) if marker_time else None, int(window))


def metrics_labels(channels: tuple[str, ...]) -> list[str]:
    """Channel labels of the metrics outlet, in order."""
    return ([f"latency_{s}" for s in STAGES] + list(COUNTERS) + ["measured_rate_hz",
            "failed_threads", "estimated_accuracy"] + [f"flagged_{name}" for _, name in FLAG_NAMES]
            + [f"flags_{c}" for c in channels])


def _describe_run(info: object, meta: dict[str, str]) -> None:
    node = info.desc().append_child("neurorvq")
    for key, value in meta.items():
        node.append_child_value(key, str(value))


class ResultOutlets:
    """Creates the enabled outlets and pushes one window's results to each.

    ``meta`` (tokenizer, engine, mapping, preprocessing, budgets) goes into every outlet's
    ``desc/neurorvq`` so a recording says what produced it, and the predictions outlet's
    also describes its classifier. ``token_layout`` is the tokenizer's (branches, levels).
    """

    def __init__(
        self,
        identity: OutletIdentity,
        channels: tuple[str, ...],
        n_patches: int,
        hop_samples: int,
        meta: dict[str, str],
        token_layout: tuple[int, int],
        classifier: BoundDecoder | None = None,
        enabled: tuple[str, ...] = KINDS,
    ) -> None:
        import pylsl

        unknown = sorted(set(enabled) - set(KINDS))
        if unknown:
            raise ValueError(f"Unknown outlet(s) {unknown}; valid: {list(KINDS)}.")
        window = n_patches * round(MODEL_RATE)
        if not 1 <= hop_samples <= window:
            raise ValueError(f"hop_samples={hop_samples} must be within 1..{window} (the window).")
        self.identity = identity
        self.channels = tuple(channels)
        self.n_patches = n_patches
        self.hop_samples = hop_samples
        self.meta = dict(meta)
        self._enabled = tuple(enabled)
        self.classifier: BoundDecoder | None = None
        self._outlets: dict[str, object] = {}
        self._prepared: tuple[BoundDecoder, object] | None = None
        self._layouts = 0  # class sets published after the first: source_id suffixes
        if classifier is not None:
            self.set_classifier(classifier)
        if "Decisions" in enabled:
            info = self._info("Decisions", len(DECISION_CHANNELS), pylsl.IRREGULAR_RATE,
                              "string")
            write_channels(info, [ChannelInfo(c, "", "decision") for c in DECISION_CHANNELS])
            self._open("Decisions", info)
        if "Tokens" in enabled and token_layout[0]:
            n_branches, n_levels = token_layout
            info = self._info("Tokens", n_branches * n_levels * len(channels) * n_patches,
                              pylsl.IRREGULAR_RATE, "int32")
            layout = info.desc().append_child("layout")
            layout.append_child_value("order", "branch,level,channel,patch")
            layout.append_child_value(
                "index", f"((branch*{n_levels} + level)*n_channels + channel)*n_patches + patch")
            layout.append_child_value("n_branches", str(n_branches))
            layout.append_child_value("n_levels", str(n_levels))
            layout.append_child_value("n_patches", str(n_patches))
            layout.append_child_value("channels", ",".join(channels))
            self._open("Tokens", info)
        if "Reconstruction" in enabled and token_layout[0]:
            info = self._info("Reconstruction", len(channels), MODEL_RATE, "float32")
            write_channels(info, [ChannelInfo(c, "microvolts", "EEG") for c in channels])
            self._open("Reconstruction", info, chunk_size=hop_samples)
        if "Metrics" in enabled:
            labels = metrics_labels(self.channels)
            units = (["ms"] * len(STAGES) + ["count"] * len(COUNTERS) + ["Hz", "count", "ratio"]
                     + ["channels"] * len(FLAG_NAMES) + ["bitmask"] * len(channels))
            info = self._info("Metrics", len(labels), pylsl.IRREGULAR_RATE, "float32")
            write_channels(info, [ChannelInfo(lab, u, "metric")
                                  for lab, u in zip(labels, units, strict=True)])
            bits = info.desc().append_child("flags")
            for flag, name in FLAG_NAMES:
                bits.append_child_value(name, str(int(flag)))
            self._open("Metrics", info)

    def _info(self, kind: str, n_channels: int, rate: float, fmt: str,
              source_id: str | None = None) -> object:
        import pylsl

        return pylsl.StreamInfo(self.identity.stream_name(kind), kind, n_channels, rate, fmt,
                                source_id or self.identity.stream_source_id(kind))

    def _open(self, kind: str, info: object, chunk_size: int = 0) -> None:
        import pylsl

        _describe_run(info, self.meta)
        self._outlets[kind] = pylsl.StreamOutlet(info, chunk_size=chunk_size)

    def set_classifier(self, classifier: BoundDecoder) -> None:
        """Publish ``classifier``'s predictions from now on: its classes are the channels,
        its kind, classes, CV score and window spec the metadata. LSL metadata cannot
        change on an open outlet, and must not describe the wrong decoder, so a swapped
        classifier gets a fresh outlet (new uid; the one :meth:`prepare` opened for it,
        if any)."""
        if "Predictions" not in self._enabled or classifier is self.classifier:
            return
        prepared = self._prepared
        if prepared is None or prepared[0] is not classifier:
            self.prepare(classifier)
            prepared = self._prepared
        assert prepared is not None
        self._outlets["Predictions"] = prepared[1]
        self.classifier, self._prepared = classifier, None

    def prepare(self, classifier: BoundDecoder) -> object | None:
        """Open the predictions outlet ``classifier`` will publish on, before its first
        window, so that a recorder can be collecting from it by then.

        While the classes stay those of the outlet it replaces, it keeps the run's
        predictions source_id (liblsl's ``recover`` moves consumers over) and None is
        returned. Other classes get the next ``-2``, ``-3``, ... after it, so no consumer
        (nor LabRecorder's inlet) recovers onto a stream with other channels; its
        ``StreamInfo`` (with uid) is returned: a stream nobody has seen yet.
        """
        import pylsl

        if "Predictions" not in self._enabled:
            return None
        names = classifier.class_names
        current = self._prepared[0] if self._prepared is not None else self.classifier
        new_stream = current is not None and tuple(current.class_names) != tuple(names)
        self._layouts += new_stream
        source_id = self.identity.stream_source_id("Predictions")
        info = self._info("Predictions", len(names), pylsl.IRREGULAR_RATE, "float32",
                          f"{source_id}-{self._layouts + 1}" if self._layouts else source_id)
        write_channels(info, [ChannelInfo(c, "probability", "prediction") for c in names])
        _describe_run(info, {**self.meta, **classifier.metadata()})
        outlet = pylsl.StreamOutlet(info)
        self._prepared = (classifier, outlet)
        return outlet.get_info() if new_stream else None

    @property
    def names(self) -> tuple[str, ...]:
        """Stream names of the open outlets."""
        return tuple(self.identity.stream_name(kind) for kind in self._outlets)

    def stream_infos(self) -> list[object]:
        """The open outlets' ``pylsl.StreamInfo`` (with uids): what a recorder records.

        A classifier swapped in later publishes on another outlet (:meth:`prepare`), which
        the pipeline hands to its recorder then.
        """
        return [outlet.get_info() for outlet in self._outlets.values()]

    def push(self, result: WindowResult) -> None:
        """Push what ``result`` holds, each outlet stamped with ``result.t_last``."""
        t = result.t_last
        if result.probabilities is not None and "Predictions" in self._outlets:
            probs = np.asarray(result.probabilities, np.float32).reshape(-1)
            self._outlets["Predictions"].push_sample(probs, t)
        if result.decision is not None and "Decisions" in self._outlets:
            self._outlets["Decisions"].push_sample(decision_sample(result), t)
        if result.tokens is not None and "Tokens" in self._outlets:
            # engine layout [branches, levels, C*A], k = channel*A + patch: flat = the index
            self._outlets["Tokens"].push_sample(
                np.asarray(result.tokens).reshape(-1).astype(np.int32), t)
        if result.reconstruction is not None and "Reconstruction" in self._outlets:
            rec = np.asarray(result.reconstruction, np.float32)[:, -self.hop_samples:]
            stamps = t - np.arange(self.hop_samples - 1, -1, -1) / MODEL_RATE
            self._outlets["Reconstruction"].push_chunk(np.ascontiguousarray(rec.T),
                                                       stamps.tolist())

    def push_metrics(self, result: WindowResult, status: PipelineStatus) -> None:
        """One metrics sample for one window: its latencies and quality flags (its own), and
        the run's counters as they stand after it."""
        if "Metrics" not in self._outlets:
            return
        flags = result.flags if result.flags is not None else np.zeros(len(self.channels))
        counts = count_by_kind(flags)
        row = [result.latency.get(s, float("nan")) for s in STAGES]
        row += [float(getattr(status, c)) for c in COUNTERS]
        row += [status.measured_rate, float(len(status.failed)),
                status.inference.estimated_accuracy]
        row += [float(counts.get(name, 0)) for _, name in FLAG_NAMES]
        row += [float(bits) for bits in flags]
        self._outlets["Metrics"].push_sample(np.asarray(row, np.float32), result.t_last)

    def close(self) -> None:
        self._outlets.clear()
        self._prepared = None
