"""Engine cache: hits reuse, any change of key or artifact rebuilds, failures leave nothing."""

import json
import logging
import shutil

import onnx
import pytest
from onnx import TensorProto, helper

from neurorvq_stream.engines.backends._cache import (
    CacheKey,
    EngineCache,
    file_sha256,
    library_versions,
)


def _write_graph(folder, tag):
    """A tiny real ONNX graph as the cached artifact (what ONNX Runtime entries hold on CPU)."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n"])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n"])
    graph = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], tag, [x], [y])
    onnx.save(helper.make_model(graph), folder / "model.onnx")
    return {"built_from": tag}


class _Builder:
    def __init__(self):
        self.calls = 0

    def __call__(self, folder):
        self.calls += 1
        return _write_graph(folder, f"build{self.calls}")


@pytest.fixture
def checkpoint(tmp_path):
    path = tmp_path / "model.pt"
    path.write_bytes(b"weights v1")
    return path


def _key(checkpoint, **changes):
    fields = dict(
        name="tokenizer", checkpoint_sha256=file_sha256(checkpoint), precision="fp32",
        shapes={"channels": [1, 64, 128], "patches": [1, 4, 16]},
        versions=library_versions({"gpu": "none"}),
    )
    fields.update(changes)
    return CacheKey(**fields)


def test_hit_reuses_and_metadata_records_key(tmp_path, checkpoint):
    cache, build = EngineCache(tmp_path / "cache"), _Builder()
    key = _key(checkpoint)
    first = cache.get_or_build(key, build)
    second = cache.get_or_build(key, build)
    assert first == second and build.calls == 1
    meta = json.loads((first / "metadata.json").read_text())
    assert meta["key"]["checkpoint_sha256"] == file_sha256(checkpoint)
    assert meta["artifacts"]["model.onnx"] == file_sha256(first / "model.onnx")
    assert meta["built_from"] == "build1"
    onnx.checker.check_model(str(first / "model.onnx"))


def test_new_library_versions_rebuild_the_entry_in_place(tmp_path, checkpoint, caplog):
    cache, build = EngineCache(tmp_path / "cache"), _Builder()
    old = cache.get_or_build(_key(checkpoint), build)
    new_key = _key(checkpoint, versions=library_versions({"gpu": "H100", "tensorrt": "10.15"}))
    assert cache.why_stale(new_key).startswith("versions")
    with caplog.at_level(logging.WARNING):
        folder = cache.get_or_build(new_key, build)
    assert folder == old and build.calls == 2 and "Rebuilding" in caplog.text
    assert json.loads((folder / "metadata.json").read_text())["built_from"] == "build2"
    assert cache.why_stale(new_key) is None


@pytest.mark.parametrize(
    "change",
    [
        {"precision": "fp16"},
        {"shapes": {"channels": [1, 64, 256], "patches": [1, 4, 16]}},
        {"shapes": {"channels": [1, 64, 128], "patches": [1, 4, 16], "sidecar_sha256": "9f2c"}},
    ],
)
def test_variants_of_one_checkpoint_are_built_once_each_and_kept(tmp_path, checkpoint, change):
    cache, build = EngineCache(tmp_path / "cache"), _Builder()
    keys = (_key(checkpoint), _key(checkpoint, **change))
    folders = [cache.get_or_build(key, build) for key in keys * 2]  # back and forth
    assert build.calls == 2 and folders[2:] == folders[:2] and folders[0] != folders[1]
    built = [json.loads((f / "metadata.json").read_text())["built_from"] for f in folders[:2]]
    assert built == ["build1", "build2"]


def test_changed_checkpoint_gets_its_own_entry(tmp_path, checkpoint):
    cache, build = EngineCache(tmp_path / "cache"), _Builder()
    old = cache.get_or_build(_key(checkpoint), build)
    checkpoint.write_bytes(b"weights v2, retrained")
    new = cache.get_or_build(_key(checkpoint), build)
    assert new != old and build.calls == 2


def test_tampered_or_missing_artifact_rebuilds(tmp_path, checkpoint, caplog):
    cache, build = EngineCache(tmp_path / "cache"), _Builder()
    key = _key(checkpoint)
    folder = cache.get_or_build(key, build)
    (folder / "model.onnx").write_bytes(b"corrupted")
    assert "changed" in cache.why_stale(key)
    with caplog.at_level(logging.WARNING):
        cache.get_or_build(key, build)
    assert build.calls == 2 and "Rebuilding" in caplog.text
    (folder / "model.onnx").unlink()
    assert "missing" in cache.why_stale(key)
    (folder / "metadata.json").write_text("{not json")
    assert "unreadable" in cache.why_stale(key)


def test_failed_build_leaves_no_entry(tmp_path, checkpoint):
    cache = EngineCache(tmp_path / "cache")

    def broken(folder):
        _write_graph(folder, "half")
        raise RuntimeError("builder crashed")

    with pytest.raises(RuntimeError, match="builder crashed"):
        cache.get_or_build(_key(checkpoint), broken)
    assert cache.why_stale(_key(checkpoint)) == "not built yet"
    assert not any((tmp_path / "cache").iterdir())
    with pytest.raises(RuntimeError, match="wrote no files"):
        cache.get_or_build(_key(checkpoint), lambda folder: None)


def test_a_checkpoint_with_and_without_a_sidecar_keeps_both_exports(tmp_path, caplog):
    """The same weights with a sidecar (class names) are another export, and switching
    between the two finds both in the cache instead of exporting each again."""
    from helpers import PARITY_DIR

    from neurorvq_stream.engines._checkpoint import sidecar_path
    from neurorvq_stream.engines.backends import export_graphs
    from neurorvq_stream.engines.backends._export import export_class_names

    cache = EngineCache(tmp_path / "cache")
    bare = PARITY_DIR / "foundation_model.pt"
    named = tmp_path / "head.pt"
    shutil.copy(bare, named)
    classes = ["left", "right", "feet", "tongue"]
    sidecar_path(named).write_text(json.dumps({"classes": classes}))
    first = [export_graphs(cache, None, path)[0][0] for path in (bare, named)]
    with caplog.at_level(logging.INFO, logger=EngineCache.__module__):
        again = [export_graphs(cache, None, path)[0][0] for path in (bare, named)]
    assert again == first and first[0] != first[1]
    assert [r.getMessage() for r in caplog.records] == [f"Engine cache hit: {f}" for f in first]
    assert export_class_names(first[1:]) == tuple(classes)
    assert export_class_names(first[:1]) != tuple(classes)


def test_stale_onnx_export_is_rebuilt(tmp_path, caplog):
    """A real export whose recorded torch version no longer matches is re-exported."""
    from helpers import PARITY_DIR

    from neurorvq_stream.engines.backends import export_graphs

    cache = EngineCache(tmp_path / "cache")
    classifier = PARITY_DIR / "foundation_model.pt"
    (folder,), _ = export_graphs(cache, None, classifier)
    meta_path = folder / "metadata.json"
    meta = json.loads(meta_path.read_text())
    meta["key"]["versions"]["torch"] = "2.0.0"  # as if exported by an older install
    meta_path.write_text(json.dumps(meta))
    with caplog.at_level(logging.WARNING):
        (again,), config = export_graphs(cache, None, classifier)
    assert again == folder and "Rebuilding" in caplog.text and "2.0.0" in caplog.text
    assert json.loads(meta_path.read_text())["key"]["versions"] == library_versions()
    assert config.n_out == 4
    onnx.checker.check_model(str(folder / "classify.onnx"))
