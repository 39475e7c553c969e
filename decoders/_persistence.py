"""Decoder files: save and load without running code from the file.

Two formats, one JSON sidecar ``<file>.json`` describing either:

- NeuroRVQ heads: an engines ``.safetensors`` checkpoint (weights only), run through
  ``engines.backends.create_engine`` so ``--engine`` applies;
- scikit-learn / pyriemann / mne decoders: a ``.skops`` file. skops rebuilds objects
  without pickle and only types it is told to trust; beyond its defaults (scikit-learn,
  numpy, scipy) we trust exactly the types our decoders are made of (``ALLOWED_TYPES``),
  and refuse a file holding anything else.

The sidecar (:class:`Sidecar`) holds ``kind``, ``classes``, ``class_markers``,
``window_spec``, ``scores``, ``calibration`` and ``provenance``, and a head's engines keys.
Sidecars written before decoders existed (the shipped checker head's, until re-saved) still
load: their spec is derived from ``provenance.window``; so do the flat window specs 0.2.0
wrote.
"""

from __future__ import annotations

import json
import os
import uuid
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any

from pydantic import ConfigDict, Field

from neurorvq_stream.engines._checkpoint import CheckpointSidecar
from neurorvq_stream.engines._schema import Names, SchemaError, Whole

from ._calibrated import CalibratedModel
from ._decoders import HeadDecoder, SklearnDecoder
from ._kinds import HEAD_KINDS, KINDS
from ._protocol import Decoder, DecoderError
from ._spec import SpecError, WindowSpec
from ._typicality import TypicalityGate

FORMAT = "neurorvq-decoder"
FORMAT_VERSION = 1
HEAD_SUFFIXES = (".safetensors", ".pt")
SKOPS_SUFFIX = ".skops"

# Types a .skops decoder file may hold beyond skops' defaults: ours and the libraries'
# estimators the kinds are built from (tests/decoders check every kind stays within it).
ALLOWED_TYPES = (
    "neurorvq_stream.decoders._calibrated.CalibratedModel",
    "neurorvq_stream.decoders._calibrated.TemperatureScaling",
    "neurorvq_stream.decoders._features.BandPass",
    "neurorvq_stream.decoders._features.EpochAmplitudes",
    "neurorvq_stream.decoders._features.FoundationFeatures",
    "neurorvq_stream.decoders._typicality.TypicalityGate",
    "pyriemann.estimation.Covariances",
    "pyriemann.estimation.XdawnCovariances",
    "pyriemann.spatialfilters.CSP",
    "pyriemann.spatialfilters.Xdawn",
    "pyriemann.tangentspace.TangentSpace",
)


class Sidecar(CheckpointSidecar):
    """A decoder file's sidecar, checked as a whole; every key may be absent in a head's.

    A head's sidecar is its engines checkpoint's with the decoder keys added;
    ``typicality`` is its typicality gate.
    """

    model_config = ConfigDict(extra="forbid")

    format: str | None = None
    format_version: Annotated[Whole, Field(ge=1)] = FORMAT_VERSION
    kind: str | None = None
    class_markers: dict[str, Names] = Field(default_factory=dict)
    window_spec: WindowSpec | None = None
    scores: dict[str, Any] = Field(default_factory=dict)
    calibration: dict[str, Any] = Field(default_factory=dict)
    typicality: dict[str, Any] | None = None

    @property
    def records_window(self) -> bool:
        """Whether the file says which windows it takes (else a run's windows are used)."""
        return self.window_spec is not None or "window" in self.provenance

    def spec(self) -> WindowSpec:
        """The window spec, or the one an older sidecar's ``provenance.window`` implies."""
        if self.window_spec is not None:
            return self.window_spec
        return WindowSpec.from_legacy_sidecar(self.model_dump())


def sidecar_path(path: Path) -> Path:
    return path.with_name(path.name + ".json")


def decoder_metadata(
    kind: str, class_names: tuple[str, ...], spec: WindowSpec, scores: Mapping[str, Any],
    calibration: Mapping[str, Any], class_markers: Mapping[str, tuple[str, ...]],
    provenance: Mapping[str, Any],
) -> dict[str, Any]:
    """The sidecar keys every decoder file carries (a head's engines keys are kept too)."""
    return {
        "format": FORMAT, "format_version": FORMAT_VERSION, "kind": kind,
        "classes": list(class_names),
        "class_markers": {c: list(m) for c, m in class_markers.items()},
        "channels": list(spec.channels), "sampling_rate": 200.0,
        "window_spec": spec.to_dict(), "scores": dict(scores),
        "calibration": dict(calibration), "provenance": dict(provenance),
    }


def _replace_atomically(path: Path, write: Any) -> None:
    """Write through a temporary file in the same folder, so a watcher never sees half a file.

    ``write`` creates the file itself, so it gets the user's usual permissions (a file made
    by ``tempfile.mkstemp`` would stay readable by its owner only, and a pipeline run by
    another user of the lab machine could not load the decoder).
    """
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:12]}{path.suffix}")
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def save_sklearn_decoder(decoder: SklearnDecoder, path: str | Path,
                         calibration: Mapping[str, Any]) -> Path:
    """Write ``decoder`` to ``path`` (.skops) and its sidecar; returns the path."""
    import skops.io as sio

    path = Path(path)
    if path.suffix != SKOPS_SUFFIX:
        raise ValueError(f"A {decoder.kind} decoder is saved as {SKOPS_SUFFIX}, not "
                         f"{path.suffix!r} ({path}).")
    path.parent.mkdir(parents=True, exist_ok=True)
    meta = decoder_metadata(decoder.kind, decoder.class_names, decoder.spec, decoder.scores,
                            calibration, decoder.class_markers, decoder.provenance)
    _replace_atomically(sidecar_path(path), lambda tmp: tmp.write_text(json.dumps(meta, indent=1)))
    _replace_atomically(path, lambda tmp: sio.dump(decoder.model, tmp))
    return path


def annotate_head(path: str | Path, kind: str, spec: WindowSpec, scores: Mapping[str, Any],
                  calibration: Mapping[str, Any], class_markers: Mapping[str, tuple[str, ...]],
                  provenance: Mapping[str, Any], gate: TypicalityGate | None = None) -> Path:
    """Add the decoder keys (and the typicality gate) to a head's engines sidecar."""
    side = sidecar_path(Path(path))
    meta = json.loads(side.read_text(encoding="utf-8"))
    classes = tuple(meta.get("classes") or ())
    meta.update(decoder_metadata(kind, classes, spec, scores, calibration, class_markers,
                                 {**meta.get("provenance", {}), **provenance}))
    _write_head_sidecar(side, meta, gate)
    return Path(path)


def add_typicality_gate(path: str | Path, gate: TypicalityGate) -> Path:
    """Keep ``gate`` in a head's sidecar: its windows that are not EEG-like then give the prior.

    For heads trained outside ``calibrate`` (the shipped default), which have no other
    decoder keys to add.
    """
    side = sidecar_path(Path(path))
    _write_head_sidecar(side, json.loads(side.read_text(encoding="utf-8")), gate)
    return Path(path)


def _write_head_sidecar(side: Path, meta: dict[str, Any], gate: TypicalityGate | None) -> None:
    if gate is not None:
        meta["typicality"] = gate.to_dict()
    _replace_atomically(side, lambda tmp: tmp.write_text(json.dumps(meta, indent=1)))


def _read_sidecar(path: Path, required: bool) -> Sidecar:
    side = sidecar_path(path)
    if not side.is_file():
        if required:
            raise DecoderError(f"Decoder {str(path)!r} has no sidecar {side.name!r}; it holds "
                               "the window spec and classes. Copy it along with the file, or "
                               "re-run `neurorvq-stream calibrate`.")
        return Sidecar()
    try:
        return Sidecar.from_dict(json.loads(side.read_text(encoding="utf-8")))
    except SchemaError as err:
        raise DecoderError(f"The sidecar {str(side)!r} is damaged: "
                           f"{'; '.join(p.format(None) for p in err.problems)}; restore it "
                           "from where the decoder came from or re-calibrate.") from None
    except ValueError as err:
        raise DecoderError(f"The sidecar {str(side)!r} is not valid JSON ({err}); restore it "
                           "from where the decoder came from or re-calibrate.") from None


def _spec_of(path: Path, meta: Sidecar) -> WindowSpec:
    try:
        return meta.spec()
    except SpecError as err:
        raise DecoderError(f"Decoder {str(path)!r}: {err}") from None


def _load_skops(path: Path, meta: Sidecar) -> SklearnDecoder:
    import skops.io as sio

    kind = meta.kind
    if meta.format != FORMAT or kind not in KINDS or kind in HEAD_KINDS:
        raise DecoderError(f"The sidecar of {str(path)!r} does not describe a scikit-learn "
                           f"decoder (format {meta.format!r}, kind {kind!r}); was it "
                           "written by `neurorvq-stream calibrate`?")
    try:
        found = sio.get_untrusted_types(file=path)
    except (zipfile.BadZipFile, KeyError, ValueError, OSError) as err:
        raise DecoderError(f"Decoder {str(path)!r} is not a readable .skops file ({err}); "
                           "re-calibrate or restore the file.") from None
    refused = sorted(set(found) - set(ALLOWED_TYPES))
    if refused:
        raise DecoderError(
            f"Refusing to load {str(path)!r}: it holds types no neurorvq-stream decoder is "
            f"made of ({', '.join(refused)}), which could run code. Only load decoder "
            "files you made with `neurorvq-stream calibrate`.")
    try:
        model = sio.load(path, trusted=list(found))
    except Exception as err:  # skops raises many types for a damaged archive
        raise DecoderError(f"Decoder {str(path)!r} is damaged ({type(err).__name__}: {err}); "
                           "re-calibrate or restore the file.") from None
    classes = meta.classes
    if not isinstance(model, CalibratedModel) or len(model.classes_) != len(classes):
        raise DecoderError(f"Decoder {str(path)!r} does not match its sidecar (a "
                           f"{type(model).__name__} for classes {list(classes)}); the two "
                           "files come from different calibrations.")
    return SklearnDecoder(kind=kind, class_names=classes, spec=_spec_of(path, meta),
                          model=model, scores=meta.scores, class_markers=meta.class_markers,
                          provenance=meta.provenance)


def _load_head(path: Path, meta: Sidecar, backend: str,
               run_spec: WindowSpec | None) -> HeadDecoder:
    from neurorvq_stream.engines import CheckpointError
    from neurorvq_stream.engines.backends import create_engine

    try:
        engine = create_engine(tokenizer=None, classifier=path, backend=backend)
    except CheckpointError as err:
        raise DecoderError(str(err)) from None
    spec = run_spec if run_spec is not None and not meta.records_window else _spec_of(path, meta)
    try:
        gate = None if meta.typicality is None else TypicalityGate.from_dict(meta.typicality)
    except (KeyError, TypeError, ValueError) as err:
        raise DecoderError(f"The sidecar of {str(path)!r} has a damaged 'typicality' entry "
                           f"({err}); re-calibrate or restore it.") from None
    return HeadDecoder(kind=meta.kind or "neurorvq-head",
                       class_names=tuple(engine.class_names), spec=spec,
                       path=path, backend=backend, scores=meta.scores,
                       class_markers=meta.class_markers, provenance=meta.provenance,
                       gate=gate, engine=engine)


def load_decoder(path: str | Path, backend: str = "auto",
                 run_spec: WindowSpec | None = None) -> Decoder:
    """The decoder in ``path`` (.skops, or a NeuroRVQ head .safetensors/.pt) with its spec.

    ``backend`` picks the inference backend of NeuroRVQ heads (as ``run --engine``). A head
    that records no window at all (an official fine-tuned checkpoint dropped in, no
    sidecar) classifies the windows of the run it is loaded into: ``run_spec``.
    Any fault is a :class:`DecoderError` naming the file and what to do.
    """
    path = Path(path)
    if path.is_dir():
        raise DecoderError(f"Decoder {str(path)!r} is a folder; give the decoder file in it.")
    if not path.is_file():
        raise DecoderError(f"Decoder file {str(path)!r} does not exist.")
    suffix = path.suffix.lower()
    if suffix == SKOPS_SUFFIX:
        return _load_skops(path, _read_sidecar(path, required=True))
    if suffix in HEAD_SUFFIXES:
        return _load_head(path, _read_sidecar(path, required=False), backend, run_spec)
    raise DecoderError(f"Decoder {str(path)!r} has an unknown extension; decoder files end "
                       f"in {SKOPS_SUFFIX} or {' / '.join(HEAD_SUFFIXES)}.")


def default_decoder() -> Path | None:
    """The classifier file a run uses when none is given: the shipped decoder.

    A decoder calibrated and chosen by cross-validation (``.skops`` in ``models/``) comes
    first; else the shipped NeuroRVQ head (``engines.shipped_model("classifier")``); else
    None (tokens only).
    """
    from neurorvq_stream.engines import shipped_model
    from neurorvq_stream.engines._checkpoint import shipped_models_dir

    calibrated = sorted(shipped_models_dir().glob(f"*{SKOPS_SUFFIX}"))
    return calibrated[0] if calibrated else shipped_model("classifier")
