"""The four result outlets, each with full LSL metadata, stamped in the source clock.

Every sample a window produces carries the source LSL time (clock-corrected) of that
window's last sample, so a consumer can line predictions up with the EEG and markers it
records itself (LabRecorder, mne-lsl) without knowing our processing delay.
"""

from __future__ import annotations

import numpy as np

from ._lsl import ChannelInfo, write_channels
from ._results import PipelineStatus, WindowResult

PREDICTIONS = "NeuroRVQ-Predictions"
TOKENS = "NeuroRVQ-Tokens"
RECONSTRUCTION = "NeuroRVQ-Reconstruction"
METRICS = "NeuroRVQ-Metrics"
OUTLET_NAMES = (PREDICTIONS, TOKENS, RECONSTRUCTION, METRICS)

#: Latency stages reported per window (milliseconds), in metrics channel order.
STAGES = ("preprocess", "wait", "inference", "publish", "end_to_end")
#: Status counters reported on the metrics outlet, in channel order.
COUNTERS = (
    "windows_done",
    "windows_dropped",
    "deadline_misses",
    "inference_errors",
    "queue_depth",
    "samples_lost",
    "gaps",
    "stalls",
)
N_BRANCHES, N_LEVELS = 4, 8


def _describe_run(info: object, meta: dict[str, str]) -> None:
    node = info.desc().append_child("neurorvq")
    for key, value in meta.items():
        node.append_child_value(key, str(value))


class ResultOutlets:
    """Creates the enabled outlets and pushes one window's results to each.

    ``meta`` (model paths, engine description, mapping) goes into every outlet's
    ``desc/neurorvq`` so a recording says what produced it.
    """

    def __init__(
        self,
        channels: tuple[str, ...],
        n_patches: int,
        hop_samples: int,
        class_names: tuple[str, ...],
        meta: dict[str, str],
        enabled: tuple[str, ...] = OUTLET_NAMES,
        source_id: str = "neurorvq-stream",
    ) -> None:
        import pylsl

        unknown = sorted(set(enabled) - set(OUTLET_NAMES))
        if unknown:
            raise ValueError(f"Unknown outlet(s) {unknown}; valid: {list(OUTLET_NAMES)}.")
        if not 1 <= hop_samples <= n_patches * 200:
            raise ValueError(
                f"hop_samples={hop_samples} must be within 1..{n_patches * 200} (the window)."
            )
        self.channels = tuple(channels)
        self.n_patches = n_patches
        self.hop_samples = hop_samples
        self.meta = dict(meta)
        self._source_id = source_id
        self._enabled = tuple(enabled)
        self.class_names: tuple[str, ...] = ()
        self._outlets: dict[str, object] = {}
        if PREDICTIONS in enabled and class_names:
            self._open_predictions(class_names)
        if TOKENS in enabled:
            n = N_BRANCHES * N_LEVELS * len(channels) * n_patches
            info = pylsl.StreamInfo(TOKENS, "Tokens", n, pylsl.IRREGULAR_RATE, "int32",
                                    f"{source_id}-tokens")
            layout = info.desc().append_child("layout")
            layout.append_child_value("order", "branch,level,channel,patch")
            layout.append_child_value("index", "((branch*8 + level)*n_channels + channel)"
                                      "*n_patches + patch")
            layout.append_child_value("n_branches", str(N_BRANCHES))
            layout.append_child_value("n_levels", str(N_LEVELS))
            layout.append_child_value("n_patches", str(n_patches))
            layout.append_child_value("channels", ",".join(channels))
            _describe_run(info, self.meta)
            self._outlets[TOKENS] = pylsl.StreamOutlet(info)
        if RECONSTRUCTION in enabled:
            info = pylsl.StreamInfo(RECONSTRUCTION, "EEG", len(channels), 200.0, "float32",
                                    f"{source_id}-reconstruction")
            write_channels(info, [ChannelInfo(c, "microvolts", "EEG") for c in channels])
            _describe_run(info, self.meta)
            self._outlets[RECONSTRUCTION] = pylsl.StreamOutlet(info, chunk_size=hop_samples)
        if METRICS in enabled:
            labels = [f"latency_{s}" for s in STAGES] + list(COUNTERS)
            units = ["ms"] * len(STAGES) + ["count"] * len(COUNTERS)
            info = pylsl.StreamInfo(METRICS, "Metrics", len(labels), pylsl.IRREGULAR_RATE,
                                    "float32", f"{source_id}-metrics")
            write_channels(info, [ChannelInfo(lab, u, "metric")
                                  for lab, u in zip(labels, units, strict=True)])
            _describe_run(info, self.meta)
            self._outlets[METRICS] = pylsl.StreamOutlet(info)

    def _open_predictions(self, class_names: tuple[str, ...]) -> None:
        import pylsl

        info = pylsl.StreamInfo(PREDICTIONS, "Predictions", len(class_names),
                                pylsl.IRREGULAR_RATE, "float32", f"{self._source_id}-predictions")
        write_channels(info, [ChannelInfo(c, "probability", "prediction") for c in class_names])
        _describe_run(info, self.meta)
        self.class_names = tuple(class_names)
        self._outlets[PREDICTIONS] = pylsl.StreamOutlet(info)

    def set_classes(self, class_names: tuple[str, ...], meta: dict[str, str]) -> None:
        """Re-open the predictions outlet when a swapped classifier has other classes."""
        self.meta.update(meta)
        if PREDICTIONS not in self._enabled or tuple(class_names) == self.class_names:
            return
        self._outlets.pop(PREDICTIONS, None)
        self._open_predictions(tuple(class_names))

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self._outlets)

    def push(self, result: WindowResult) -> None:
        """Push what ``result`` holds, each outlet stamped with ``result.t_last``."""
        t = result.t_last
        if result.probabilities is not None and PREDICTIONS in self._outlets:
            probs = np.asarray(result.probabilities, np.float32).reshape(-1)
            self._outlets[PREDICTIONS].push_sample(probs, t)
        if result.tokens is not None and TOKENS in self._outlets:
            tokens = np.asarray(result.tokens)
            # engine layout [4, 8, (1,) C*A], k = channel*A + patch: flat = the layout index
            self._outlets[TOKENS].push_sample(tokens.reshape(-1).astype(np.int32), t)
        if result.reconstruction is not None and RECONSTRUCTION in self._outlets:
            rec = np.asarray(result.reconstruction, np.float32)
            rec = rec.reshape(rec.shape[-2], rec.shape[-1])[:, -self.hop_samples:]
            stamps = t - np.arange(self.hop_samples - 1, -1, -1) / 200.0
            self._outlets[RECONSTRUCTION].push_chunk(np.ascontiguousarray(rec.T), stamps.tolist())

    def push_metrics(self, result: WindowResult, status: PipelineStatus) -> None:
        """One metrics sample: the window's stage latencies and the running counters."""
        if METRICS not in self._outlets:
            return
        row = [result.latency.get(s, float("nan")) for s in STAGES]
        row += [float(getattr(status, c)) for c in COUNTERS]
        self._outlets[METRICS].push_sample(np.asarray(row, np.float32), result.t_last)

    def close(self) -> None:
        self._outlets.clear()
