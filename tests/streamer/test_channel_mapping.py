"""Channel mapping to the NeuroRVQ electrodes: 10-20 labels, old names, BioSemi 128."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import mne
import numpy as np
import pytest

from neurorvq_stream.engines import ELECTRODES
from neurorvq_stream.streamer._channel_mapping import map_channels, normalize_label


def _biosemi_edf() -> Path:
    spec = importlib.util.find_spec("pylossless")
    assert spec is not None and spec.origin is not None, "pylossless (test data) is missing"
    path = Path(spec.origin).parent / "assets/test_data/sub-s01/eeg/sub-s01_task-faceO_eeg.edf"
    assert path.exists(), f"missing bundled recording {path}"
    return path


def test_ten_twenty_labels_with_decorations() -> None:
    labels = ["EEG Fp1-REF", "EEG FP2-REF", "Cz", "o1-LE", "PZ", "STATUS", "Foo", "cz"]
    mapping = map_channels(labels)
    assert mapping.names == ("fp1", "fp2", "cz", "o1", "pz")
    assert mapping.source_indices == (0, 1, 2, 3, 4)
    assert set(mapping.methods) == {"label"}
    assert dict(mapping.dropped) == {
        "STATUS": "not EEG",
        "Foo": "unknown label",
        "cz": "duplicate of Cz",
    }
    assert all(name in ELECTRODES for name in mapping.names)
    table = mapping.describe()
    assert "EEG Fp1-REF" in table and "Dropped: " in table
    assert mapping.summary().splitlines() == [
        "Channel mapping: 5 of 8 stream channels used, 5 by label, 0 by position",
        "Dropped 3: 1 not EEG, 1 unknown label, 1 duplicate"]


def test_old_names_map_to_modern_unless_modern_present() -> None:
    mapping = map_channels(["T3", "T4", "T5", "T6", "C3"])
    assert mapping.names == ("t7", "t8", "p7", "p8", "c3")
    assert mapping.methods[:4] == ("old-name",) * 4
    both = map_channels(["T3", "T7"])
    assert both.names == ("t3", "t7")


def test_channel_types_exclude_non_eeg() -> None:
    mapping = map_channels(["Fz", "Cz", "EOG"], types=["EEG", "EEG", "EOG"])
    assert mapping.names == ("fz", "cz")
    assert ("EOG", "type EOG") in mapping.dropped


def test_biosemi128_from_bundled_edf_by_montage_positions() -> None:
    raw = mne.io.read_raw_edf(_biosemi_edf(), preload=False, verbose="error")
    labels = raw.ch_names
    assert labels[0] == "A1" and len(labels) == 128
    mapping = map_channels(labels, montage="biosemi128")
    assert set(mapping.methods) == {"position"}
    assert len(set(mapping.names)) == len(mapping.names) > 50
    assert max(mapping.distances_mm) <= 20.0
    # The BioSemi channel nearest to the standard Cz position must be the one mapped to cz.
    biosemi = mne.channels.make_standard_montage("biosemi128").get_positions()["ch_pos"]
    points = np.array([biosemi[label] for label in labels])
    directions = points / np.linalg.norm(points, axis=1, keepdims=True)
    nearest_vertex = labels[int(np.argmax(directions[:, 2]))]
    assert mapping.source_labels[mapping.names.index("cz")] == nearest_vertex
    assert "a1" not in mapping.names  # BioSemi's A1 is a vertex channel, not the ear
    assert "cz" in mapping.describe()


def test_positions_from_stream_metadata() -> None:
    standard = mne.channels.make_standard_montage("colin27_1005").get_positions()["ch_pos"]
    picks = ["Fz", "Cz", "Pz", "Oz", "C3", "C4", "F3", "F4", "P3", "P4", "Fp1", "Fp2"]
    rng = np.random.default_rng(0)
    positions = {f"ch{i}": standard[name] + rng.normal(0, 0.002, 3) for i, name in enumerate(picks)}
    labels = list(positions)
    mapping = map_channels(labels, positions=positions)
    assert mapping.names == tuple(name.lower() for name in picks)
    assert max(mapping.distances_mm) < 10.0
    in_mm = map_channels(labels, positions={k: 1000 * v for k, v in positions.items()})
    assert in_mm.names == mapping.names
    np.testing.assert_allclose(in_mm.distances_mm, mapping.distances_mm)


def test_unknown_zero_positions_are_ignored() -> None:
    labels = ["Fz", "Cz", "E7"]
    mapping = map_channels(labels, positions={label: (0.0, 0.0, 0.0) for label in labels})
    assert mapping.names == ("fz", "cz")
    assert ("E7", "unknown label") in mapping.dropped


def test_nothing_maps_gives_a_helpful_error() -> None:
    with pytest.raises(ValueError, match=r"seen: A1x, B7.*--montage"):
        map_channels(["A1x", "B7"])
    biosemi = [f"{bank}{n}" for bank in "ABCD" for n in range(1, 33)]
    with pytest.raises(ValueError, match=r"128 of 128 EEG channels have numbered.*--montage"):
        map_channels(biosemi)  # A1/A2 must not silently become the ear electrodes
    with pytest.raises(ValueError, match="Unknown montage 'nope'"):
        map_channels(["A1"], montage="nope")


def test_normalize_label() -> None:
    assert normalize_label("EEG Fp1-REF") == "fp1"
    assert normalize_label(" O2-LE ") == "o2"
    assert normalize_label("C3") == "c3"
