"""WindowSpec: JSON round trip, checks, and the spec of sidecars written before specs."""

import json

import pytest

from neurorvq_stream.decoders import WindowSpec
from neurorvq_stream.decoders._spec import SpecError
from neurorvq_stream.engines import Preprocessing, Window, shipped_model
from neurorvq_stream.streamer import RunConfig


def test_the_run_config_and_the_spec_share_one_preprocessing_type():
    assert type(RunConfig().preprocessing) is Preprocessing
    spec = WindowSpec(mode="sliding", n_patches=1, marker_offset=0.0, labels=(),
                      channels=("cz",))
    assert spec.preprocessing == RunConfig().preprocessing


def test_the_run_config_and_the_spec_share_one_window_type():
    erp = RunConfig.from_dict({"markers": {"name": "m"}, "windows": {
        "mode": "markers", "n_patches": 4, "marker_length": 1, "marker_offset": -0.1}})
    assert isinstance(erp.windows, Window)
    # what the run cuts: marker_length sets an ERP window; the hop is not part of a window
    assert erp.windows.cut == Window(mode="markers", n_patches=1, marker_offset=-0.1)
    spec = WindowSpec.of(erp.windows, ("a", "b"), ("cz",), erp.preprocessing)
    assert spec.cut == erp.windows.cut and spec.n_samples == 200
    assert RunConfig().windows.cut == Window()


def test_round_trip_through_json():
    spec = WindowSpec(mode="markers", n_patches=2, marker_offset=-1.0,
                      labels=("press-left", "press-right"), channels=("c3", "c4", "cz"),
                      preprocessing=Preprocessing(l_freq=0.0, h_freq=30.0, notch=False,
                                                  reference="average", clip_uv=800.0))
    again = WindowSpec.from_dict(json.loads(json.dumps(spec.to_dict())))
    assert again == spec and again.n_samples == 400
    assert "from marker -1 s" in spec.describe() and "band 0-30 Hz" in spec.describe()


def test_a_spec_written_by_0_2_0_holds_the_preprocessing_flat():
    flat = {"mode": "markers", "n_patches": 1, "marker_offset": 0.0, "labels": ["a"],
            "channels": ["cz"], "l_freq": 0.1, "h_freq": 30.0, "line_freq": 60.0,
            "notch": False, "reference": "average", "clip_uv": 800.0}
    spec = WindowSpec.from_dict(flat)
    assert spec.preprocessing == Preprocessing(l_freq=0.1, h_freq=30.0, line_freq=60.0,
                                               notch=False, reference="average", clip_uv=800.0)


@pytest.mark.parametrize(("change", "message"), [
    ({"mode": "erp"}, "mode: got 'erp'"),
    ({"n_patches": 0}, "n_patches: must be >= 1 and <= 256, got 0"),
    ({"channels": ()}, "channels: is empty"),
    ({"channels": ("cz", "cz")}, "channels: repeat a name"),
    ({"preprocessing": {"l_freq": 50.0}}, "preprocessing.l_freq: must be below "
                                          "preprocessing.h_freq"),
    ({"preprocessing": {"reference": "linked"}}, "preprocessing.reference: got 'linked'"),
])
def test_invalid_specs_name_the_field(change, message):
    base = {"mode": "markers", "n_patches": 1, "marker_offset": 0.0, "labels": ("a", "b"),
            "channels": ("cz",)}
    with pytest.raises(SpecError, match=message):
        WindowSpec(**{**base, **change})


def test_a_marker_spec_without_labels_locks_on_every_marker():
    # What a run derives for a head that records no window, when no labels are configured.
    spec = WindowSpec(mode="markers", n_patches=1, marker_offset=0.0, labels=(),
                      channels=("cz",))
    assert spec.labels == () and "from marker" in spec.describe()


def test_from_dict_names_unknown_and_missing_keys():
    with pytest.raises(SpecError) as caught:
        WindowSpec.from_dict({"mode": "sliding", "n_patches": 4, "marker_offset": 0.0,
                              "labels": [], "hop": 0.5})
    assert [(p.key, p.message.split(";")[0]) for p in caught.value.problems] == [
        ("channels", "is missing"), ("hop", "unknown key")]


def test_shipped_head_sidecar_gives_its_training_window():
    path = shipped_model("classifier")
    meta = json.loads(path.with_name(path.name + ".json").read_text())
    # Its sidecar was written before window specs; re-saved, it holds the one it implies.
    engines_keys = {k: meta[k] for k in ("channels", "classes", "sampling_rate", "provenance",
                                         "config")}
    spec = WindowSpec.from_legacy_sidecar(engines_keys)
    assert spec == WindowSpec.from_dict(meta["window_spec"])
    assert (spec.mode, spec.n_patches, spec.marker_offset) == ("markers", 1, 0.0)
    assert spec.labels == ("checker-left", "checker-right")
    assert spec.channels == tuple(meta["channels"]) and spec.preprocessing.l_freq == 0.5
    with pytest.raises(SpecError, match="re-calibrate"):
        WindowSpec.from_legacy_sidecar({"channels": ["cz"], "classes": ["a", "b"]})
