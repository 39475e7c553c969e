"""Reading and writing NeuroRVQ checkpoints in the official key format.

The official files are plain ``state_dict``s (``torch.save``); ``.safetensors`` copies use the
same keys. The configuration is inferred from tensor shapes, so any depth, codebook size or
head size loads without a config file. Our own checkpoints are written in the same key
format with a JSON sidecar ``<file>.json`` (channels, classes, sampling rate, provenance).
"""

from __future__ import annotations

import json
import pickle
import re
import zipfile
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import torch
from pydantic import ConfigDict, Field
from torch import nn

from ._config import NeuroRVQConfig
from ._foundation import NeuroRVQFoundationModel
from ._schema import Names, Schema, SchemaError
from ._tokenizer import NeuroRVQTokenizer

_PRETRAINING_KEYS = ("mask_token", "norm_pre.", "head_pre_")
_WRAPPER_KEYS = ("model", "state_dict", "module")
_SUFFIXES = (".pt", ".pth", ".bin", ".ckpt", ".safetensors")
_COPY_AGAIN = "copy it again from its source (an interrupted download or copy leaves this)"


class CheckpointError(ValueError):
    """A checkpoint that cannot be used; the message names the file, the fault and the fix."""


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """Tensors of a ``.pt``/``.pth`` (torch.save, weights only) or ``.safetensors`` file.

    Nothing in the file is ever run: ``.pt`` files are unpickled with ``weights_only``,
    and a file that asks for more is refused. Empty, text, Git-LFS-pointer and truncated
    files are recognised before loading, so the error says what is wrong with the file
    rather than where a parser stopped.
    """
    path = Path(path)
    name = repr(str(path))
    if path.is_dir():
        raise CheckpointError(
            f"Checkpoint {name} is a folder; pass the .pt or .safetensors file inside it."
        )
    if not path.is_file():
        raise FileNotFoundError(f"Checkpoint {name} does not exist.")
    if path.suffix not in _SUFFIXES:
        raise CheckpointError(
            f"Checkpoint {name} has suffix {path.suffix!r}; expected .pt/.pth (torch.save "
            "state_dict) or .safetensors."
        )
    fault = _file_fault(path)
    if fault is not None:
        raise CheckpointError(f"Checkpoint {name} {fault}.")
    if path.suffix == ".safetensors":
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        try:
            return load_file(str(path), device="cpu")
        except SafetensorError as err:
            raise CheckpointError(
                f"Checkpoint {name} is not a readable safetensors file ({err}); {_COPY_AGAIN}."
            ) from err
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        refusal = _refusal(err)
        if refusal is not None:
            raise CheckpointError(f"Checkpoint {name} was refused: {refusal}") from None
        raise CheckpointError(
            f"Checkpoint {name} is not a torch.save file or is damaged "
            f"({_unpickler_detail(err)}); {_COPY_AGAIN}."
        ) from err
    except (RuntimeError, EOFError, KeyError, ValueError) as err:
        raise CheckpointError(
            f"Checkpoint {name} is not a torch.save file or is damaged ({_first_line(err)}); "
            f"{_COPY_AGAIN}."
        ) from err
    return _tensors(state, name)


def _tensors(state: object, name: str) -> dict[str, torch.Tensor]:
    """The state_dict inside what torch.load returned, unwrapping ``{"model": ...}`` forms."""
    while isinstance(state, Mapping) and not any(torch.is_tensor(v) for v in state.values()):
        inner = [k for k in _WRAPPER_KEYS if isinstance(state.get(k), Mapping)]
        if not inner:
            raise CheckpointError(
                f"Checkpoint {name} holds no tensors at top level and none of the "
                f"wrapper keys {_WRAPPER_KEYS}; found keys {sorted(map(str, state))[:10]}."
            )
        state = state[inner[0]]
    if not isinstance(state, Mapping):
        raise CheckpointError(
            f"Checkpoint {name} is a {type(state).__name__}, not a state_dict."
        )
    return {k: v for k, v in state.items() if torch.is_tensor(v)}


def _file_fault(path: Path) -> str | None:
    """What is visibly wrong with the file's bytes (the loaders' own errors do not say)."""
    size = path.stat().st_size
    if size == 0:
        return f"is empty (0 bytes); {_COPY_AGAIN}"
    with path.open("rb") as f:
        head = f.read(512)
    if head.startswith(b"version https://git-lfs"):
        return ("is a Git LFS pointer, not the weights; fetch them with `git lfs pull` "
                "(or download the file itself)")
    if _is_text(head):
        first = head.decode("utf-8", errors="replace").strip().splitlines()[0][:60]
        return (f"is a text file, not a checkpoint (it begins {first!r}); pass the .pt or "
                ".safetensors file that holds the weights")
    if path.suffix == ".safetensors":
        return _safetensors_fault(path, size)
    if head.startswith(b"PK\x03\x04") and not zipfile.is_zipfile(path):
        return ("is cut short: a torch.save file is a zip archive, and the index at its end "
                f"is missing; {_COPY_AGAIN}")
    return None


def _safetensors_fault(path: Path, size: int) -> str | None:
    """Compare the file's size with what its header (8-byte length + JSON) describes."""
    with path.open("rb") as f:
        n_header = int.from_bytes(f.read(8), "little")
        if size < 8 or 8 + n_header > size:
            return (f"is cut short or not a safetensors file: its header needs "
                    f"{8 + n_header} bytes, the file has {size}; {_COPY_AGAIN}")
        try:
            header = json.loads(f.read(n_header))
            ends = [int(t["data_offsets"][1]) for k, t in header.items() if k != "__metadata__"]
        except (ValueError, TypeError, KeyError, IndexError, AttributeError):
            return ("has a damaged header (not the JSON a safetensors file starts with); "
                    f"{_COPY_AGAIN}")
    expected = 8 + n_header + max(ends, default=0)
    if size < expected:
        return (f"is cut short: it holds {size} of the {expected} bytes its header describes "
                f"({1 - size / expected:.0%} missing); {_COPY_AGAIN}")
    return None


def _is_text(head: bytes) -> bool:
    """Printable UTF-8 (a multi-byte character cut at the end of ``head`` is allowed)."""
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError as err:
        if err.start < len(head) - 3:
            return False
        text = head[:err.start].decode("utf-8")
    return bool(text.strip()) and all(c.isprintable() or c in "\t\n\r\f" for c in text)


def _refusal(err: pickle.UnpicklingError) -> str | None:
    """Why a weights-only load refused the pickle and what to do; None if it is just damaged."""
    detail = _unpickler_detail(err)
    if re.match(r"(Unsupported operand|String is too long|pickle data was truncated)", detail):
        return None
    found = re.search(r"GLOBAL ([\w.]+)", str(err))
    what = f"calls {found.group(1)}" if found else "builds Python objects other than tensors"
    return (
        f"unpickling it {what}, and only tensors are read from a .pt file (nothing in it was "
        "run). A weights file never needs this: the file may be malicious, or a training "
        "checkpoint with more than weights. If it comes from a source you trust, save its "
        "state_dict alone (or convert it to .safetensors) and pass that; otherwise delete it."
    )


def _unpickler_detail(err: pickle.UnpicklingError) -> str:
    """The weights-only unpickler's own reason, without torch's advice around it."""
    found = re.search(r"WeightsUnpickler error:\s*(.+)", str(err))
    return found.group(1).strip() if found else _first_line(err)


def _first_line(err: BaseException) -> str:
    text = str(err).strip() or type(err).__name__
    return text.splitlines()[0][:160]


def _require(sd: Mapping[str, torch.Tensor], key: str, what: str) -> torch.Tensor:
    if key not in sd:
        looks = ("tokenizer" if "encoder.cls_token" in sd
                 else "foundation-model" if "cls_token" in sd else None)
        hint = f"; it looks like a {looks} checkpoint" if looks not in (None, what) else ""
        raise CheckpointError(
            f"not a NeuroRVQ {what} checkpoint: key {key!r} is missing "
            f"(first keys present: {list(sd)[:5]}){hint}."
        )
    return sd[key]


def _count(sd: Iterable[str], pattern: str) -> int:
    rx = re.compile(pattern)
    return len({m.group(1) for k in sd if (m := rx.fullmatch(k))})


def _embedding_fields(sd: Mapping[str, torch.Tensor], prefix: str, what: str) -> dict:
    """Fields shared by every backbone, read from ``prefix``-ed keys."""
    cls = _require(sd, f"{prefix}cls_token", what)
    pe = f"{prefix}patch_embed."
    n_branches = _count(sd, re.escape(pe) + r"conv1_(\d+)\.weight")
    kernels1 = tuple(sd[f"{pe}conv1_{i}.weight"].shape[-1] for i in range(1, n_branches + 1))
    kernels2 = tuple(
        _require(sd, f"{pe}conv2_{i}.weight", what).shape[-1] for i in range(1, n_branches + 1)
    )
    dim = cls.shape[-1]
    head_dim = _require(sd, f"{prefix}blocks.0.attn.q_norm.weight", what).shape[0]
    return {
        "embed_dim": dim,
        "num_heads": dim // head_dim,
        "mlp_hidden": _require(sd, f"{prefix}blocks.0.mlp.fc1.weight", what).shape[0],
        "n_positions": _require(sd, f"{prefix}pos_embed", what).shape[0],
        "n_times": _require(sd, f"{prefix}time_embed", what).shape[0],
        "conv_channels": _require(sd, f"{pe}conv1_1.weight", what).shape[0],
        "kernels1": kernels1,
        "kernels2": kernels2,
    }


def tokenizer_config(sd: Mapping[str, torch.Tensor]) -> NeuroRVQConfig:
    """Tokenizer configuration implied by a state_dict's shapes."""
    what = "tokenizer"
    codebook = _require(sd, "quantize_1.layers.0.embedding.weight", what)
    return NeuroRVQConfig(
        **_embedding_fields(sd, "encoder.", what),
        patch_size=_require(sd, "decode_task_layer_amplitude.2.weight", what).shape[0],
        depth_encoder=_count(sd, r"encoder\.blocks\.(\d+)\..*"),
        depth_decoder=_count(sd, r"decoder\.blocks\.(\d+)\..*"),
        n_code=codebook.shape[0],
        code_dim=codebook.shape[1],
        n_levels=_count(sd, r"quantize_1\.layers\.(\d+)\..*"),
        layer_scale=False,
    )


def foundation_config(
    sd: Mapping[str, torch.Tensor], pretraining_heads: bool | None = None
) -> NeuroRVQConfig:
    """Foundation-model configuration implied by a state_dict (either form).

    ``pretraining_heads=None`` keeps the heads if the file has them; ``False`` drops them
    (classification), ``True`` requires them.
    """
    what = "foundation-model"
    fields = _embedding_fields(sd, "", what)
    has_pre = "head_pre_1.weight" in sd
    if pretraining_heads and not has_pre:
        raise CheckpointError(
            "no pretraining heads (head_pre_1..32) in this foundation-model checkpoint: "
            "it is a fine-tuned file."
        )
    use_pre = has_pre if pretraining_heads is None else pretraining_heads
    n_pre = _count(sd, r"head_pre_(\d+)\.weight")
    n_branches = len(fields["kernels1"])
    return NeuroRVQConfig(
        **fields,
        depth=_count(sd, r"blocks\.(\d+)\..*"),
        layer_scale="blocks.0.gamma_1" in sd,
        n_out=sd["head.weight"].shape[0] if "head.weight" in sd else 0,
        branch_norms="fc_norm_1.weight" in sd,
        pretraining_heads=use_pre,
        n_code=sd["head_pre_1.weight"].shape[0] if has_pre else NeuroRVQConfig.n_code,
        n_levels=n_pre // n_branches if has_pre else NeuroRVQConfig.n_levels,
    )


def load_state(
    module: nn.Module,
    sd: Mapping[str, torch.Tensor],
    ignore: tuple[str, ...] = (),
    source: str = "checkpoint",
) -> None:
    """Copy ``sd`` into ``module``; any missing/unexpected key or wrong shape is one error."""
    own = module.state_dict()
    missing = [k for k in own if k not in sd]
    unexpected = [k for k in sd if k not in own and not k.startswith(ignore)]
    shapes = [
        f"{k}: file {tuple(sd[k].shape)} vs model {tuple(v.shape)}"
        for k, v in own.items()
        if k in sd and sd[k].shape != v.shape
    ]
    if missing or unexpected or shapes:
        parts = []
        for label, items in (
            ("missing keys", missing),
            ("unexpected keys", unexpected),
            ("shape mismatches", shapes),
        ):
            if items:
                more = f" (+{len(items) - 8} more)" if len(items) > 8 else ""
                parts.append(f"{label} ({len(items)}): {', '.join(items[:8])}{more}")
        raise CheckpointError(
            f"The {source} does not fit {type(module).__name__}: " + "; ".join(parts) + "."
        )
    module.load_state_dict({k: sd[k] for k in own}, strict=True)


def _named(infer: Callable[..., NeuroRVQConfig], path: str | Path, *args: object
           ) -> NeuroRVQConfig:
    """``infer(*args)``, with the checkpoint's file named in any error it raises."""
    try:
        return infer(*args)
    except CheckpointError as err:
        raise CheckpointError(f"Checkpoint {str(path)!r}: {err}") from None


def build_tokenizer(path: str | Path) -> NeuroRVQTokenizer:
    """Tokenizer module with the weights of ``path``, in eval mode."""
    sd = read_state_dict(path)
    model = NeuroRVQTokenizer(_named(tokenizer_config, path, sd))
    load_state(model, sd, source=f"checkpoint {str(path)!r}")
    return model.eval()


def build_foundation_model(
    path: str | Path, n_out: int | None = None, pretraining_heads: bool | None = None
) -> NeuroRVQFoundationModel:
    """Foundation model from either checkpoint form, in eval mode.

    ``n_out`` adds a freshly initialised ``fc_norm``/``head`` with that many outputs when
    the file has no head (pretraining form) or replaces a head of another size (fine-tuning
    on a new task).
    """
    sd = dict(read_state_dict(path))
    cfg = _named(foundation_config, path, sd, pretraining_heads)
    ignore = () if cfg.pretraining_heads else _PRETRAINING_KEYS
    fresh = n_out is not None and n_out != cfg.n_out
    if fresh:
        cfg = NeuroRVQConfig(**{**cfg.to_dict(), "n_out": n_out})
        ignore = (*ignore, "fc_norm.", "head.")
    model = NeuroRVQFoundationModel(cfg)
    if fresh:
        sd.update(
            {k: v for k, v in model.state_dict().items() if k.startswith(("fc_norm.", "head."))}
        )
    load_state(model, sd, ignore=ignore, source=f"checkpoint {str(path)!r}")
    return model.eval()


def sidecar_path(path: str | Path) -> Path:
    """``<file>.json`` next to a checkpoint."""
    path = Path(path)
    return path.with_name(path.name + ".json")


class CheckpointSidecar(Schema):
    """What a checkpoint's sidecar tells the engines; ``config`` is the network's settings.

    The layers above keep their own keys in the same file (a decoder's window spec), which
    the engines leave to them: their model (``decoders.Sidecar``) refuses unknown keys.
    """

    model_config = ConfigDict(extra="ignore")

    channels: Names = ()
    classes: Names = ()
    sampling_rate: float = 200.0
    provenance: dict[str, Any] = Field(default_factory=dict)
    config: dict[str, Any] | None = None


def read_sidecar(path: str | Path) -> dict:
    """Sidecar metadata of ``path`` (its engines keys, checked), or ``{}`` for files
    without one (official checkpoints)."""
    side = sidecar_path(path)
    if not side.is_file():
        return {}
    restore = ("restore it from where the checkpoint came from: it holds the checkpoint's "
               "channels and class names")
    try:
        meta = json.loads(side.read_text(encoding="utf-8"))
    except ValueError as err:  # JSON and UTF-8 decoding errors alike
        raise CheckpointError(
            f"The sidecar {str(side)!r} of checkpoint {str(path)!r} is not valid JSON "
            f"({err}); {restore}."
        ) from None
    if not isinstance(meta, dict):
        raise CheckpointError(
            f"The sidecar {str(side)!r} of checkpoint {str(path)!r} holds a "
            f"{type(meta).__name__}, not a JSON object; {restore}."
        )
    try:
        return CheckpointSidecar.from_dict(meta).to_dict()
    except SchemaError as err:
        problems = "; ".join(p.format(None) for p in err.problems)
        raise CheckpointError(
            f"The sidecar {str(side)!r} of checkpoint {str(path)!r} is damaged: {problems}; "
            f"{restore}."
        ) from None


def save_checkpoint(
    module: nn.Module,
    path: str | Path,
    channels: Iterable[str] = (),
    classes: Iterable[str] = (),
    sampling_rate: float = 200.0,
    provenance: Mapping[str, object] | None = None,
) -> Path:
    """Write ``module``'s weights in the official key format plus a JSON sidecar.

    ``.safetensors`` is preferred (no pickle); ``.pt`` writes a torch.save state_dict.
    """
    path = Path(path)
    sd = {k: v.detach().cpu().contiguous() for k, v in module.state_dict().items()}
    if path.suffix == ".safetensors":
        from safetensors.torch import save_file

        save_file(sd, str(path))
    elif path.suffix in (".pt", ".pth"):
        torch.save(sd, path)
    else:
        raise ValueError(f"Cannot save to {str(path)!r}: use a .safetensors or .pt suffix.")
    config = getattr(module, "config", None)
    meta = {
        "channels": list(channels),
        "classes": list(classes),
        "sampling_rate": sampling_rate,
        "provenance": dict(provenance or {}),
        "config": config.to_dict() if isinstance(config, NeuroRVQConfig) else None,
    }
    sidecar_path(path).write_text(json.dumps(meta, indent=1))
    return path


def shipped_models_dir() -> Path:
    """The folder of the default models installed with the package (``models/``)."""
    from importlib.resources import files

    return Path(str(files("neurorvq_stream.models")))


def shipped_model(kind: str) -> Path | None:
    """The default checkpoint of ``kind`` shipped in ``models/``, or None.

    ``kind`` is "tokenizer" (file name contains "tokenizer"), "classifier" (its sidecar
    lists classes) or "foundation" (a foundation model without classes). One rule, so the
    CLI, ``build_engine.py`` and calibration agree on what "the default model" is.
    """
    candidates = sorted(
        p for p in shipped_models_dir().glob("*") if p.suffix in (".pt", ".safetensors")
    )
    rules = {
        "tokenizer": lambda p: "tokenizer" in p.name,
        "classifier": lambda p: bool(read_sidecar(p).get("classes")),
        "foundation": lambda p: "tokenizer" not in p.name and not read_sidecar(p).get("classes"),
    }
    if kind not in rules:
        raise ValueError(f"kind must be one of {sorted(rules)}, got {kind!r}.")
    found = [p for p in candidates if rules[kind](p)]
    return found[0] if found else None
