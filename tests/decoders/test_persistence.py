"""Decoder files: every kind saves and loads to the same probabilities; bad files are refused."""

import copy
import dataclasses
import json
import zipfile

import numpy as np
import pytest
import skops.io as sio
from pyriemann.classification import MDM
from pyriemann.estimation import Covariances
from sklearn.pipeline import make_pipeline

from neurorvq_stream.decoders import (
    KINDS,
    Decoder,
    DecoderError,
    SessionAdapter,
    WindowSpec,
    load_decoder,
)
from neurorvq_stream.decoders._persistence import ALLOWED_TYPES
from neurorvq_stream.training._decoder_set import (
    LabelledEpochs,
    add_committee,
    file_suffix,
    fit_decoders,
    head_recipe,
)

# Its module-scoped fixtures are built once: every test of the module on one xdist worker.
pytestmark = [pytest.mark.xdist_group("decoders/test_persistence.py"), pytest.mark.slow]


@pytest.fixture(scope="module")
def small(checker_epochs):
    """Every fourth epoch (about 50 per class): enough for 5 folds, quick to fit."""
    e = checker_epochs
    return LabelledEpochs(e.x[::4], e.y[::4], e.class_names, e.spec, e.class_markers)


@pytest.fixture(scope="module")
def fitted(small, tiny_foundation_model):
    # Two epochs of full fine-tuning: the file is the same whatever the number of epochs.
    short = dataclasses.replace(head_recipe("neurorvq-head-full"), epochs=2, warmup_epochs=1)
    return {f.kind: f for f in fit_decoders(list(KINDS), small, tiny_foundation_model,
                                            progress=False,
                                            recipes={"neurorvq-head-full": short})}


@pytest.fixture(scope="module")
def saved(fitted, tmp_path_factory):
    folder = tmp_path_factory.mktemp("decoders")
    return {kind: f.save(folder / f"{kind}{file_suffix(kind)}") for kind, f in fitted.items()}


@pytest.mark.parametrize("kind", list(KINDS))
def test_round_trip_gives_the_same_probabilities(kind, fitted, saved, small):
    decoder = load_decoder(saved[kind], backend="pytorch")
    assert isinstance(decoder, Decoder)
    assert (decoder.kind, decoder.class_names, decoder.spec) == (kind, small.class_names,
                                                                  small.spec)
    assert decoder.scores["cv_mean"] == fitted[kind].scores["cv_mean"]
    x = small.x[:20]
    expected = fitted[kind].probabilities(x)
    got = decoder.probabilities(x)
    np.testing.assert_allclose(got, expected, atol=1e-5)
    np.testing.assert_allclose(decoder.predict_proba(x[0]), expected[0], atol=1e-5)
    decoder.warmup()
    assert kind in decoder.describe() and "CV balanced accuracy" in decoder.describe()


def test_the_committee_travels_with_the_file_and_files_get_the_users_permissions(
        fitted, small, tmp_path):
    chosen = copy.copy(fitted["xdawn-tangent"])
    add_committee(chosen)
    path = chosen.save(tmp_path / "chosen.skops")
    decoder = load_decoder(path)
    assert len(decoder.model.committee) == 8
    np.testing.assert_allclose(decoder.model.class_shares, np.bincount(small.y) / len(small.y))
    x = small.x[:30]
    np.testing.assert_allclose(decoder.session().probabilities(x),
                               SessionAdapter(chosen.model, recentre=False).probabilities(x))
    # what a plain file of this user gets (not the owner-only mode of a temporary file)
    plain = tmp_path / "plain.txt"
    plain.write_text("")
    for written in (path, path.with_name(path.name + ".json")):
        assert written.stat().st_mode & 0o777 == plain.stat().st_mode & 0o777


def test_sidecar_carries_spec_scores_and_calibration(saved, small):
    meta = json.loads(saved["xdawn-tangent"].with_name("xdawn-tangent.skops.json").read_text())
    assert meta["kind"] == "xdawn-tangent" and meta["classes"] == list(small.class_names)
    assert WindowSpec.from_dict(meta["window_spec"]) == small.spec
    assert set(meta["scores"]) >= {"cv_mean", "cv_std", "cv_folds", "chance", "n_per_class"}
    assert meta["calibration"]["method"] == "temperature"
    head = json.loads(saved["neurorvq-head"].with_name("neurorvq-head.safetensors.json")
                      .read_text())
    assert head["calibration"]["folded_into_head"] is True
    # Readers of the old sidecar layout still find the window and channels.
    assert head["provenance"]["window"] == {"mode": "markers", "marker_offset": 0.0,
                                            "marker_length": 1}
    assert head["channels"] == list(small.spec.channels)


def test_every_kind_stays_within_the_allow_list(saved):
    for kind, path in saved.items():
        if path.suffix == ".skops":
            assert set(sio.get_untrusted_types(file=path)) <= set(ALLOWED_TYPES), kind


def test_allow_list_names_importable_types():
    import importlib

    for name in ALLOWED_TYPES:
        module, _, cls = name.rpartition(".")
        assert isinstance(getattr(importlib.import_module(module), cls), type), name


def _copy_sidecar(source, target):
    target.with_name(target.name + ".json").write_text(
        source.with_name(source.name + ".json").read_text())


def test_a_type_outside_the_allow_list_is_refused(saved, small, tmp_path):
    other = make_pipeline(Covariances(), MDM()).fit(small.x[:40].astype(float), small.y[:40])
    path = tmp_path / "other.skops"
    sio.dump(other, path)
    _copy_sidecar(saved["amplitude-lr"], path)
    with pytest.raises(DecoderError, match=r"Refusing to load .*pyriemann\.classification\.MDM"):
        load_decoder(path)


def test_code_smuggled_into_the_schema_is_refused(saved, tmp_path):
    path = tmp_path / "evil.skops"
    with zipfile.ZipFile(saved["amplitude-lr"]) as src, zipfile.ZipFile(path, "w") as dst:
        for item in src.infolist():
            data = src.read(item)
            if item.filename == "schema.json":
                data = data.replace(b'"CalibratedModel"', b'"Popen"').replace(
                    b'"neurorvq_stream.decoders._calibrated"', b'"subprocess"')
            dst.writestr(item, data)
    _copy_sidecar(saved["amplitude-lr"], path)
    with pytest.raises(DecoderError, match=r"Refusing to load .*subprocess\.Popen.*could run"):
        load_decoder(path)


def test_files_that_are_not_decoders_get_one_clear_error(saved, tmp_path):
    pickle_file = tmp_path / "model.skops"
    pickle_file.write_bytes(b"\x80\x04\x95 not a zip, a pickle")
    _copy_sidecar(saved["amplitude-lr"], pickle_file)
    with pytest.raises(DecoderError, match=r"not a readable \.skops file"):
        load_decoder(pickle_file)
    lonely = tmp_path / "lonely.skops"
    lonely.write_bytes(saved["amplitude-lr"].read_bytes())
    with pytest.raises(DecoderError, match="has no sidecar"):
        load_decoder(lonely)
    unknown = tmp_path / "model.pkl"
    unknown.write_bytes(b"x")
    with pytest.raises(DecoderError, match="unknown extension"):
        load_decoder(unknown)
    with pytest.raises(DecoderError, match="does not exist"):
        load_decoder(tmp_path / "absent.skops")
    broken = tmp_path / "broken.skops"
    broken.write_bytes(saved["amplitude-lr"].read_bytes())
    broken.with_name("broken.skops.json").write_text("{not json")
    with pytest.raises(DecoderError, match="not valid JSON"):
        load_decoder(broken)


def test_sidecar_of_another_decoder_is_caught(saved, tmp_path):
    path = tmp_path / "mixed.skops"
    path.write_bytes(saved["amplitude-lr"].read_bytes())
    meta = json.loads(saved["amplitude-lr"].with_name("amplitude-lr.skops.json").read_text())
    meta["classes"] = ["a", "b", "c"]
    path.with_name("mixed.skops.json").write_text(json.dumps(meta))
    with pytest.raises(DecoderError, match="does not match its sidecar"):
        load_decoder(path)


def test_a_damaged_sidecar_names_every_wrong_key_at_once(saved, tmp_path):
    path = tmp_path / "damaged.skops"
    path.write_bytes(saved["amplitude-lr"].read_bytes())
    meta = json.loads(saved["amplitude-lr"].with_name("amplitude-lr.skops.json").read_text())
    meta["window_spec"]["channels"] = []
    meta["window_spec"]["preprocessing"]["l_freq"] = "0.5"
    meta["bogus"] = 1
    path.with_name("damaged.skops.json").write_text(json.dumps(meta))
    with pytest.raises(DecoderError) as caught:
        load_decoder(path)
    message = str(caught.value)
    assert "window_spec.channels: is empty" in message
    assert "window_spec.preprocessing.l_freq: expected a number (Hz" in message
    assert "bogus: unknown key" in message and "\n" not in message
