"""The models a pipeline runs: the tokenizer engine and a decoder that can be swapped live.

The decoder is whatever a classifier file holds (``neurorvq_stream.decoders``: a NeuroRVQ
head or a classical decoder), bound to the rows of the pipeline's windows that are the
channels it was calibrated on. Tokenizer and decoder load separately, so that swapping
the decoder (a re-calibration writes its file) never reloads or re-warms the tokenizer.
Windows carry the bound decoder they were cut for, so a window in flight during a swap
finishes on the decoder whose spec it matches.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # the backends import torch: only when a pipeline really loads models
    from neurorvq_stream.decoders import Decoder, SessionAdapter, WindowSpec
    from neurorvq_stream.engines.backends import InferenceEngine

logger = logging.getLogger("neurorvq_stream")


@dataclass(frozen=True)
class BoundDecoder:
    """A decoder, the file it came from, the rows of a window that are its channels, and
    the session its windows are classified through: it tempers the confidence to this
    session's windows and cued trials (and re-centres the input on them with
    ``run --adapt``), causally.
    """

    decoder: Decoder
    path: Path
    rows: np.ndarray
    session: SessionAdapter

    @classmethod
    def bind(cls, decoder: Decoder, path: Path, channels: Sequence[str],
             adapt: bool = False) -> BoundDecoder:
        """Bind ``decoder`` to a pipeline's mapped ``channels`` with a fresh session
        (``Decoder.session``; ``adapt`` re-centres it); a clear error if a channel is
        missing, a ``DecoderError`` if it cannot be re-centred."""
        missing = [c for c in decoder.spec.channels if c not in channels]
        if missing:
            raise ValueError(
                f"The classifier {str(path)!r} was calibrated on {len(decoder.spec.channels)} "
                f"channels, {len(missing)} of which this stream does not give: "
                f"{', '.join(missing[:12])}{' ...' if len(missing) > 12 else ''}. Calibrate "
                "one on this cap (neurorvq-stream calibrate) or run without it "
                "(--classifier none).")
        rows = np.array([list(channels).index(c) for c in decoder.spec.channels], dtype=int)
        return cls(decoder, path, rows, decoder.session(adapt))

    @property
    def class_names(self) -> tuple[str, ...]:
        return tuple(self.decoder.class_names)

    @property
    def recentred(self) -> bool:
        """Whether its input is re-centred on the session (``run --adapt``)."""
        return self.session.recentre

    def truth(self, marker: str | None) -> str | None:
        """The class a trial opened by ``marker`` belongs to (None: not one of its trials)."""
        return next((c for c, markers in self.decoder.class_markers.items()
                     if marker in markers), None)

    def metadata(self) -> dict[str, str]:
        """What a consumer of its predictions must know (the predictions outlet's desc)."""
        import json

        d = self.decoder
        return {"classifier": str(self.path), "classifier_kind": d.kind,
                "classifier_classes": ",".join(d.class_names),
                "classifier_class_markers": json.dumps(
                    {c: list(m) for c, m in d.class_markers.items()}, sort_keys=True),
                "classifier_scores": json.dumps(d.scores, sort_keys=True),
                "classifier_window": json.dumps(d.spec.to_dict(), sort_keys=True)}

    def predict(self, window: np.ndarray, truth: str | None = None
                ) -> tuple[np.ndarray, float]:
        """Calibrated class probabilities of a pipeline window (C, T), and the seconds taken.

        ``truth``, the class its marker names (:meth:`truth`), is told to the session
        after the window is classified: its confidence learns from the cued trials.
        """
        t0 = time.perf_counter()
        known = None if truth is None else self.class_names.index(truth)
        probabilities = self.session.predict_proba(window[self.rows], known)
        return np.asarray(probabilities, dtype=np.float32), time.perf_counter() - t0


class Models:
    """The tokenizer engine (or none) and the current bound decoder (or none)."""

    def __init__(self, tokenizer: Path | None, backend: str) -> None:
        from neurorvq_stream.engines.backends import create_engine

        self.backend = backend
        self.tokenizer: InferenceEngine | None = (
            create_engine(tokenizer=tokenizer, classifier=None, backend=backend)
            if tokenizer is not None else None
        )
        self.classifier: BoundDecoder | None = None

    def load_classifier(self, path: Path, channels: Sequence[str],
                        run_spec: WindowSpec, adapt: bool = False) -> BoundDecoder:
        """Load, bind and warm the decoder in ``path`` (not yet the current one).

        ``run_spec`` (the run's own windows) serves a head that records none. Each load
        gets a fresh session; ``adapt`` re-centres it (a decoder without re-centring is a
        ``DecoderError``).
        """
        from neurorvq_stream.decoders import load_decoder

        decoder = load_decoder(path, backend=self.backend, run_spec=run_spec)
        bound = BoundDecoder.bind(decoder, path, channels, adapt)
        bound.decoder.warmup()
        return bound

    def describe(self) -> str:
        parts = [self.tokenizer.describe()] if self.tokenizer is not None else []
        if self.classifier is not None:
            adapted = (", re-centred on this session's windows"
                       if self.classifier.recentred else "")
            parts.append(self.classifier.decoder.describe() + adapted)
        return " | ".join(parts) or "no model"

    def headline(self) -> str:
        """:meth:`describe` in one short line for the console: the backend, and which decoder
        file with its classes and CV score (the backends' reasons are in ``describe()``)."""
        parts = []
        if self.tokenizer is not None:
            parts.append(f"{self.tokenizer.name} {self.tokenizer.precision}")
        if self.classifier is not None:
            d = self.classifier.decoder
            classes = " / ".join(d.class_names)
            if len(classes) > 40:
                classes = f"{len(d.class_names)} classes"
            cv = (f", CV {d.scores['cv_mean']:.2f} ± {d.scores.get('cv_std', 0.0):.2f}"
                  if "cv_mean" in d.scores else ", no CV score")
            adapted = ", adapted" if self.classifier.recentred else ""
            parts.append(f"decoder {self.classifier.path.name}: {d.kind}, {classes}{cv}"
                         f"{adapted}")
        return " | ".join(parts) or "no model"

    @property
    def class_names(self) -> tuple[str, ...]:
        return self.classifier.class_names if self.classifier is not None else ()

    @property
    def token_layout(self) -> tuple[int, int]:
        """(branches, RVQ levels) of the tokenizer's tokens; (0, 0) without a tokenizer."""
        if self.tokenizer is None or self.tokenizer.config is None:
            return (0, 0)
        return (self.tokenizer.config.n_branches, self.tokenizer.config.n_levels)


class ClassifierWatcher:
    """Thread body that swaps the classifier in when its file changes on disk.

    ``swap(path)`` does the swap (the pipeline's, which also updates paths, status and
    outlets); a file caught half-written fails to load, is reported through ``report`` and
    is tried again at its next change.
    """

    def __init__(self, path: Path, swap: Callable[[Path], None],
                 report: Callable[[str], None], every_s: float = 1.0) -> None:
        self.path = path
        self._swap = swap
        self._report = report
        self._every_s = every_s
        self._mtime = path.stat().st_mtime

    def run(self, stop: threading.Event) -> None:
        while not stop.wait(self._every_s):
            if not self.path.is_file():
                continue
            mtime = self.path.stat().st_mtime
            if mtime == self._mtime:
                continue
            self._mtime = mtime
            try:
                self._swap(self.path)
            except Exception as err:  # a half-written file: retry on the next change
                self._report(f"classifier reload: {err}")
                logger.warning("Could not reload classifier %s: %s", self.path, err)
