"""WindowSpec: JSON round trip, checks, and the spec of sidecars written before specs."""

import json

import pytest

from neurorvq_stream.decoders import LEGACY_PREPROCESSING, SpecError, WindowSpec
from neurorvq_stream.engines import shipped_model
from neurorvq_stream.streamer import RunConfig


def test_legacy_preprocessing_is_the_pipeline_default():
    defaults = RunConfig().preprocessing
    assert {k: getattr(defaults, k) for k in LEGACY_PREPROCESSING} == LEGACY_PREPROCESSING


def test_round_trip_through_json():
    spec = WindowSpec("markers", 2, -1.0, ("press-left", "press-right"), ("c3", "c4", "cz"),
                      l_freq=0.0, h_freq=30.0, notch=False, reference="average", clip_uv=800.0)
    again = WindowSpec.from_dict(json.loads(json.dumps(spec.to_dict())))
    assert again == spec and again.n_samples == 400
    assert "from marker -1 s" in spec.describe() and "band 0-30 Hz" in spec.describe()


@pytest.mark.parametrize(("change", "message"), [
    ({"mode": "erp"}, "mode 'erp'"),
    ({"n_patches": 0}, "n_patches"),
    ({"channels": ()}, "channels is empty"),
    ({"channels": ("cz", "cz")}, "repeat"),
    ({"l_freq": 50.0}, "band 50-44.5 Hz"),
    ({"reference": "linked"}, "reference 'linked'"),
])
def test_invalid_specs_name_the_field(change, message):
    base = {"mode": "markers", "n_patches": 1, "marker_offset": 0.0, "labels": ("a", "b"),
            "channels": ("cz",)}
    with pytest.raises(SpecError, match=message):
        WindowSpec(**{**base, **change})


def test_a_marker_spec_without_labels_locks_on_every_marker():
    # What a run derives for a head that records no window, when no labels are configured.
    spec = WindowSpec("markers", 1, 0.0, (), ("cz",))
    assert spec.labels == () and "from marker" in spec.describe()


def test_from_dict_names_unknown_and_missing_keys():
    with pytest.raises(SpecError, match=r"unknown keys \['hop'\]; missing keys \['channels'"):
        WindowSpec.from_dict({"mode": "sliding", "n_patches": 4, "marker_offset": 0.0,
                              "labels": [], "hop": 0.5})


def test_shipped_head_sidecar_gives_its_training_window():
    path = shipped_model("classifier")
    meta = json.loads(path.with_name(path.name + ".json").read_text())
    spec = WindowSpec.from_legacy_sidecar(meta)
    assert (spec.mode, spec.n_patches, spec.marker_offset) == ("markers", 1, 0.0)
    assert spec.labels == ("checker-left", "checker-right")
    assert spec.channels == tuple(meta["channels"]) and spec.l_freq == 0.5
    with pytest.raises(SpecError, match="re-calibrate"):
        WindowSpec.from_legacy_sidecar({"channels": ["cz"], "classes": ["a", "b"]})
