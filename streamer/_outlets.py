"""The four result outlets, each with full LSL metadata, stamped in the source clock.

Every sample a window produces carries the source LSL time (clock-corrected) of that
window's last sample, so a consumer can line predictions up with the EEG and markers it
records itself (LabRecorder, mne-lsl) without knowing our processing delay.

Names and source_ids are derived from the input stream (``<input>-NeuroRVQ-Predictions``,
source_id ``<input source_id>-neurorvq-predictions``) unless configured: two pipelines on
one network (two rooms, hyperscanning) stay apart, and the same input gives the same
identities after a restart, so liblsl's ``recover`` reconnects consumers to the right one.
The reconstruction has its own stream type, ``Reconstruction``, so tools that take "the
first EEG stream" still find the amplifier.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from neurorvq_stream.engines import MODEL_RATE

from ._lsl import ChannelInfo, write_channels
from ._models import BoundDecoder
from ._quality import FLAG_NAMES
from ._results import PipelineStatus, WindowResult

KINDS = ("Predictions", "Tokens", "Reconstruction", "Metrics")

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


def metrics_labels(channels: tuple[str, ...]) -> list[str]:
    """Channel labels of the metrics outlet, in order."""
    return ([f"latency_{s}" for s in STAGES] + list(COUNTERS) + ["measured_rate_hz",
            "failed_threads"] + [f"flagged_{name}" for _, name in FLAG_NAMES]
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
            units = (["ms"] * len(STAGES) + ["count"] * len(COUNTERS) + ["Hz", "count"]
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
        """One metrics sample: the window's latencies, the counters and the quality flags."""
        if "Metrics" not in self._outlets:
            return
        counts = dict(status.flag_counts)
        flags = result.flags if result.flags is not None else np.zeros(len(self.channels))
        row = [result.latency.get(s, float("nan")) for s in STAGES]
        row += [float(getattr(status, c)) for c in COUNTERS]
        row += [status.measured_rate, float(len(status.failed))]
        row += [float(counts.get(name, 0)) for _, name in FLAG_NAMES]
        row += [float(bits) for bits in flags]
        self._outlets["Metrics"].push_sample(np.asarray(row, np.float32), result.t_last)

    def close(self) -> None:
        self._outlets.clear()
        self._prepared = None
