"""Cache of built artifacts (ONNX graphs, TensorRT engines) that is never silently stale.

A compiled engine is only valid for the checkpoint, shapes, precision, library and GPU it
was built with. Each entry is a folder named after what it holds, with ``metadata.json``
recording the full key and the SHA-256 of every artifact; a lookup whose key or artifacts
differ reports why and rebuilds instead of loading the stale file.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import platform
import shutil
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path

from filelock import FileLock

logger = logging.getLogger(__name__)

METADATA = "metadata.json"
#: Environment variable that moves the engine cache (shared lab machines, read-only homes).
CACHE_ENV = "NEURORVQ_CACHE_DIR"
_HASHES: dict[tuple[str, int, int], str] = {}


def file_sha256(path: str | Path) -> str:
    """SHA-256 of a file, remembered per (path, size, mtime) so a 300 MB checkpoint is read once."""
    path = Path(path)
    st = path.stat()
    memo = (str(path.resolve()), st.st_size, st.st_mtime_ns)
    if memo not in _HASHES:
        digest = hashlib.sha256()
        with path.open("rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
        _HASHES[memo] = digest.hexdigest()
    return _HASHES[memo]


def _lock_path(folder: Path) -> str:
    """Where builders of ``folder`` take turns: beside the system's temporary files, so the
    cache itself holds only entries."""
    digest = hashlib.sha256(str(folder.resolve()).encode()).hexdigest()[:16]
    return str(Path(tempfile.gettempdir()) / f"neurorvq-engine-{digest}.lock")


def default_cache_dir() -> Path:
    """Where built artifacts live: ``$NEURORVQ_CACHE_DIR``, else the user's cache folder.

    Per user and outside the working directory, so a pipeline run never leaves build
    output in whatever folder it was started from.
    """
    configured = os.environ.get(CACHE_ENV)
    if configured:
        return Path(configured).expanduser()
    import platformdirs

    return Path(platformdirs.user_cache_dir("neurorvq-stream")) / "engines"


def cpu_name() -> str:
    """The processor model: ONNX Runtime's optimized graphs may use its instruction set."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def library_versions(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """Versions that change what an exported or compiled artifact contains."""
    import onnx
    import torch

    versions = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "onnx": onnx.__version__,
    }
    versions.update(extra or {})
    return versions


@dataclass(frozen=True)
class CacheKey:
    """Everything an artifact depends on; equal keys mean the cached artifact may be used.

    ``shapes`` holds the build settings: optimization profile, opset, dynamic axes, engine
    options (TensorRT's workspace), and the hash of the checkpoint's sidecar (class names).
    """

    name: str
    checkpoint_sha256: str
    precision: str = "fp32"
    shapes: Mapping[str, object] = field(default_factory=dict)
    versions: Mapping[str, str] = field(default_factory=dict)

    def as_json(self) -> dict:
        return json.loads(json.dumps(asdict(self), sort_keys=True, default=list))

    def folder_name(self) -> str:
        """Readable, and unique per checkpoint, precision and build settings, so the variants
        of one checkpoint (with and without a sidecar, two profiles) coexist instead of
        replacing each other. The versions are only checked in metadata: after an upgrade
        the old entry could never be used again, so it is rebuilt in place."""
        settings = json.dumps(self.as_json()["shapes"], sort_keys=True)
        digest = hashlib.sha256(settings.encode()).hexdigest()[:8]
        return f"{self.name}-{self.precision}-{self.checkpoint_sha256[:12]}-{digest}"


class EngineCache:
    """Folder of cache entries; ``get_or_build`` is the only way in, so staleness is checked."""

    def __init__(self, root: str | Path | None = None) -> None:
        self.root = Path(root) if root is not None else default_cache_dir()

    def entry(self, key: CacheKey) -> Path:
        return self.root / key.folder_name()

    def why_stale(self, key: CacheKey) -> str | None:
        """None when the entry matches ``key`` and its artifacts are intact, else the reason."""
        folder = self.entry(key)
        meta_path = folder / METADATA
        if not meta_path.is_file():
            return "not built yet"
        try:
            meta = json.loads(meta_path.read_text())
        except json.JSONDecodeError as err:
            return f"unreadable {meta_path} ({err})"
        stored = meta.get("key", {})
        wanted = key.as_json()
        diffs = [
            f"{k}: cached {stored.get(k)!r} != wanted {wanted[k]!r}"
            for k in wanted
            if stored.get(k) != wanted[k]
        ]
        if diffs:
            return "; ".join(diffs)
        for name, digest in meta.get("artifacts", {}).items():
            path = folder / name
            if not path.is_file():
                return f"artifact {name} is missing"
            if file_sha256(path) != digest:
                return f"artifact {name} changed since it was built"
        if not meta.get("artifacts"):
            return "entry lists no artifacts"
        return None

    def get_or_build(
        self,
        key: CacheKey,
        build: Callable[[Path], Mapping[str, object] | None],
    ) -> Path:
        """Folder with valid artifacts for ``key``; builds (or rebuilds, saying why) if needed.

        ``build(folder)`` writes the artifacts into an empty folder and may return extra
        metadata (e.g. TensorRT/GPU versions, profiles) stored beside the key.
        """
        folder = self.entry(key)
        if self.why_stale(key) is None:
            logger.info("Engine cache hit: %s", folder)
            return folder
        self.root.mkdir(parents=True, exist_ok=True)
        # Processes sharing the cache (two pipelines, parallel test workers) build an entry
        # one at a time: the second finds the first's and never replaces a folder in use.
        with FileLock(_lock_path(folder)):
            reason = self.why_stale(key)
            if reason is None:
                return folder
            if folder.exists():
                logger.warning("Rebuilding %s: %s.", folder, reason)
            tmp = folder.with_name(folder.name + f".tmp{os.getpid()}")
            shutil.rmtree(tmp, ignore_errors=True)
            tmp.mkdir(parents=True)
            try:
                extra = build(tmp) or {}
                artifacts = {
                    p.name: file_sha256(p) for p in sorted(tmp.iterdir()) if p.is_file()
                }
                if not artifacts:
                    raise RuntimeError(f"Building cache entry {folder.name} wrote no files.")
                meta = {"key": key.as_json(), "artifacts": artifacts, **extra}
                (tmp / METADATA).write_text(
                    json.dumps(meta, indent=1, sort_keys=True, default=str))
                shutil.rmtree(folder, ignore_errors=True)
                tmp.rename(folder)
            finally:
                shutil.rmtree(tmp, ignore_errors=True)
        return folder
