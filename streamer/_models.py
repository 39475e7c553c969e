"""The models a pipeline runs: the tokenizer engine and a classifier that can be swapped live.

Two engines, not one, so that swapping the classifier (a re-calibration writes its file)
never reloads or re-warms the tokenizer. The swap loads and warms the new classifier
first and then replaces one reference, so a window in flight finishes on the old one.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # the backends import torch: only when a pipeline really loads models
    from neurorvq_stream.engines.backends import EngineOutput, InferenceEngine

logger = logging.getLogger("neurorvq_stream")


class Models:
    """Tokenizer and classifier engines on one backend; either may be absent."""

    def __init__(self, tokenizer: Path | None, classifier: Path | None, backend: str) -> None:
        from neurorvq_stream.engines.backends import create_engine

        self._create = create_engine
        self.backend = backend
        self.tokenizer: InferenceEngine | None = (
            create_engine(tokenizer=tokenizer, classifier=None, backend=backend)
            if tokenizer is not None else None
        )
        self.classifier_path = classifier
        self.classifier: InferenceEngine | None = (
            self._load_classifier(classifier) if classifier is not None else None
        )

    def _load_classifier(self, path: Path) -> InferenceEngine:
        return self._create(tokenizer=None, classifier=path, backend=self.backend)

    def describe(self) -> str:
        parts = [e.describe() for e in (self.tokenizer, self.classifier) if e is not None]
        return " | ".join(parts) or "no model"

    @property
    def class_names(self) -> tuple[str, ...]:
        return tuple(self.classifier.class_names) if self.classifier is not None else ()

    @property
    def token_layout(self) -> tuple[int, int]:
        """(branches, RVQ levels) of the tokenizer's tokens; (0, 0) without a tokenizer."""
        if self.tokenizer is None or self.tokenizer.config is None:
            return (0, 0)
        return (self.tokenizer.config.n_branches, self.tokenizer.config.n_levels)

    def warmup(self, channels: Sequence[str], n_patches: int) -> None:
        for engine in (self.tokenizer, self.classifier):
            if engine is not None:
                engine.warmup(channels, n_patches)

    def swap_classifier(self, path: Path, channels: Sequence[str], n_patches: int) -> None:
        """Load and warm the new classifier, then switch with one reference assignment."""
        fresh = self._load_classifier(path)
        fresh.warmup(channels, n_patches)
        self.classifier, self.classifier_path = fresh, path

    def run(
        self, x: np.ndarray, channels: Sequence[str], reconstruct: bool, tokenize: bool,
        classify: bool,
    ) -> tuple[EngineOutput | None, EngineOutput | None]:
        """The tokenizer's and the classifier's outputs for one window (None where absent
        or not asked for)."""
        tokenizer, classifier = self.tokenizer, self.classifier  # one swap-safe snapshot
        tokens = (tokenizer.run(x, channels, reconstruct=reconstruct)
                  if tokenizer is not None and tokenize else None)
        classes = (classifier.run(x, channels, reconstruct=False)
                   if classifier is not None and classify else None)
        return tokens, classes


class ClassifierWatcher:
    """Thread body that swaps the classifier in when its file changes on disk.

    ``swap(path)`` does the swap (the pipeline's, which also updates status and outlets);
    a file caught half-written fails to load, is reported through ``report`` and is tried
    again at its next change.
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
