"""How a run cuts its stream into windows: one path per distinct window spec.

A path is a preprocessing and a window schedule, and says which models its windows feed.
A run has one path, the configuration's, which feeds the tokenizer and (when the
classifier was calibrated on the same windows) the classifier. A classifier calibrated on
other windows or preprocessing (an ERP classifier locked to markers while sliding windows
feed the tokenizer and the display; a slow-potential classifier without a high-pass) gets
a second path that cuts exactly what it was calibrated on, from the same samples.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import TYPE_CHECKING

from neurorvq_stream.engines import Preprocessing

from ._config import WindowConfig
from ._models import BoundDecoder
from ._preprocessing import Preprocessor
from ._windows import MarkerLockedWindows, SlidingWindows

if TYPE_CHECKING:
    from neurorvq_stream.decoders import WindowSpec


@dataclass(frozen=True)
class WindowPath:
    """One cut of the stream; ``labels`` are the markers that lock its windows (None: all).

    Its windows feed the tokenizer when ``tokenize`` and ``classifier`` when it is set;
    ``display`` marks the run's own path, whose windows the display shows as the signal
    (a classifier's own path may be filtered differently and overlap them).
    """

    preprocessing: Preprocessing
    windows: WindowConfig
    labels: tuple[str, ...] | None
    tokenize: bool
    classifier: BoundDecoder | None = None
    display: bool = True

    @classmethod
    def of_classifier(cls, classifier: BoundDecoder, hop: float) -> WindowPath:
        """The path that cuts exactly what ``classifier`` was calibrated on.

        ``hop`` spaces sliding windows (a spec fixes the window, not how often to take one).
        """
        s = classifier.decoder.spec
        windows = WindowConfig(
            n_patches=s.n_patches, hop=min(hop, float(s.n_patches)), mode=s.mode,
            marker_offset=s.marker_offset,
            marker_length=s.n_patches if s.mode == "markers" else None)
        return cls(s.preprocessing, windows, tuple(s.labels) or None, tokenize=False,
                   classifier=classifier, display=False)

    def window_spec(self, channels: tuple[str, ...]) -> WindowSpec:
        """This path as a decoder's window spec over ``channels`` (for a classifier file
        that records no window of its own)."""
        from neurorvq_stream.decoders import WindowSpec

        w = self.windows
        return WindowSpec(mode=w.mode, n_patches=self.n_patches, marker_offset=w.marker_offset,
                          labels=tuple(self.labels or ()), channels=channels,
                          preprocessing=self.preprocessing)

    def merged(self, other: WindowPath) -> WindowPath:
        """One path feeding both paths' models (they must cut the same windows)."""
        return dataclasses.replace(self, tokenize=self.tokenize or other.tokenize,
                                   classifier=self.classifier or other.classifier,
                                   display=self.display or other.display)

    @property
    def n_patches(self) -> int:
        """Window length in 1 s patches."""
        w = self.windows
        return w.marker_length if w.mode == "markers" and w.marker_length else w.n_patches

    def same_windows(self, other: WindowPath) -> bool:
        """Whether both paths cut the same windows from the same preprocessed samples."""
        a, b = self.windows, other.windows
        if (a.mode, self.n_patches) != (b.mode, other.n_patches):
            return False
        same_cut = (a.hop == b.hop if a.mode == "sliding"
                    else (a.marker_offset, self.labels) == (b.marker_offset, other.labels))
        return same_cut and self.preprocessing == other.preprocessing

    def preprocessor(self, source_rate: float, n_channels: int,
                     unit_scale: float) -> Preprocessor:
        return Preprocessor.of(self.preprocessing, source_rate, n_channels, unit_scale)

    def scheduler(self, speed: float = 1.0) -> SlidingWindows | MarkerLockedWindows:
        """The window scheduler; ``speed`` is a replay's (its timestamps run that much
        faster than the recording, so a marker offset in recording seconds is shorter)."""
        w = self.windows
        if w.mode == "markers":
            return MarkerLockedWindows(offset_s=w.marker_offset / speed,
                                       length_patches=self.n_patches)
        return SlidingWindows(self.n_patches, w.hop)

    def locks_on(self, label: str) -> bool:
        """Whether a marker with ``label`` locks a window of this path."""
        return self.windows.mode == "markers" and (self.labels is None or label in self.labels)
