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

from neurorvq_stream.engines import Preprocessing, Window

from ._models import BoundDecoder
from ._preprocessing import Preprocessor
from ._windows import MarkerLockedWindows, SlidingWindows

if TYPE_CHECKING:
    from neurorvq_stream.decoders import WindowSpec


@dataclass(frozen=True)
class WindowPath:
    """One cut of the stream: ``window`` every ``hop`` s (sliding) or locked on the markers
    ``labels`` (None: all), from samples filtered by ``preprocessing``.

    Its windows feed the tokenizer when ``tokenize`` and ``classifier`` when it is set;
    ``display`` marks the run's own path, whose windows the display shows as the signal
    (a classifier's own path may be filtered differently and overlap them).
    """

    preprocessing: Preprocessing
    window: Window
    hop: float
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
        return cls(s.preprocessing, s.cut, min(hop, float(s.n_patches)),
                   tuple(s.labels) or None, tokenize=False, classifier=classifier,
                   display=False)

    def window_spec(self, channels: tuple[str, ...]) -> WindowSpec:
        """This path as a decoder's window spec over ``channels`` (for a classifier file
        that records no window of its own)."""
        from neurorvq_stream.decoders import WindowSpec

        return WindowSpec.of(self.window, self.labels or (), channels, self.preprocessing)

    def merged(self, other: WindowPath) -> WindowPath:
        """One path feeding both paths' models (they must cut the same windows)."""
        return dataclasses.replace(self, tokenize=self.tokenize or other.tokenize,
                                   classifier=self.classifier or other.classifier,
                                   display=self.display or other.display)

    def same_windows(self, other: WindowPath) -> bool:
        """Whether both paths cut the same windows from the same preprocessed samples."""
        if self.window != other.window or self.preprocessing != other.preprocessing:
            return False
        return (self.hop == other.hop if self.window.mode == "sliding"
                else self.labels == other.labels)

    def preprocessor(self, source_rate: float, n_channels: int,
                     unit_scale: float) -> Preprocessor:
        return Preprocessor.of(self.preprocessing, source_rate, n_channels, unit_scale)

    def scheduler(self, speed: float = 1.0) -> SlidingWindows | MarkerLockedWindows:
        """The window scheduler; ``speed`` is a replay's (its timestamps run that much
        faster than the recording, so a marker offset in recording seconds is shorter)."""
        w = self.window
        if w.mode == "markers":
            return MarkerLockedWindows(offset_s=w.marker_offset / speed,
                                       length_patches=w.n_patches)
        return SlidingWindows(w.n_patches, self.hop)

    def locks_on(self, label: str) -> bool:
        """Whether a marker with ``label`` locks a window of this path."""
        return self.window.mode == "markers" and (self.labels is None or label in self.labels)
