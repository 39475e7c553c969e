"""Reading and writing NeuroRVQ checkpoints in the official key format.

The official files are plain ``state_dict``s (``torch.save``); ``.safetensors`` copies use the
same keys. The configuration is inferred from tensor shapes, so any depth, codebook size or
head size loads without a config file. Our own checkpoints are written in the same key
format with a JSON sidecar ``<file>.json`` (channels, classes, sampling rate, provenance).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from pathlib import Path

import torch
from torch import nn

from ._config import NeuroRVQConfig
from ._foundation import NeuroRVQFoundationModel
from ._tokenizer import NeuroRVQTokenizer

_PRETRAINING_KEYS = ("mask_token", "norm_pre.", "head_pre_")
_WRAPPER_KEYS = ("model", "state_dict", "module")


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """Tensors of a ``.pt``/``.pth`` (torch.save, weights only) or ``.safetensors`` file."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"Checkpoint {str(path)!r} does not exist.")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path), device="cpu")
    if path.suffix not in (".pt", ".pth", ".bin", ".ckpt"):
        raise ValueError(
            f"Checkpoint {str(path)!r} has suffix {path.suffix!r}; expected .pt/.pth (torch.save "
            "state_dict) or .safetensors."
        )
    state = torch.load(path, map_location="cpu", weights_only=True)
    while isinstance(state, Mapping) and not any(torch.is_tensor(v) for v in state.values()):
        inner = [k for k in _WRAPPER_KEYS if isinstance(state.get(k), Mapping)]
        if not inner:
            raise ValueError(
                f"Checkpoint {str(path)!r} holds no tensors at top level and none of the "
                f"wrapper keys {_WRAPPER_KEYS}; found keys {sorted(state)[:10]}."
            )
        state = state[inner[0]]
    if not isinstance(state, Mapping):
        raise ValueError(f"Checkpoint {str(path)!r} is a {type(state).__name__}, not a state_dict.")
    return {k: v for k, v in state.items() if torch.is_tensor(v)}


def _require(sd: Mapping[str, torch.Tensor], key: str, what: str) -> torch.Tensor:
    if key not in sd:
        raise ValueError(
            f"This is not a NeuroRVQ {what} checkpoint: key {key!r} is missing "
            f"(first keys present: {list(sd)[:5]})."
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
        "mlp_hidden": sd[f"{prefix}blocks.0.mlp.fc1.weight"].shape[0],
        "n_positions": _require(sd, f"{prefix}pos_embed", what).shape[0],
        "n_times": _require(sd, f"{prefix}time_embed", what).shape[0],
        "conv_channels": sd[f"{pe}conv1_1.weight"].shape[0],
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
        raise ValueError(
            "The foundation-model checkpoint has no pretraining heads "
            "(head_pre_1..32); it is a fine-tuned file."
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
        raise ValueError(
            f"The {source} does not fit {type(module).__name__}: " + "; ".join(parts) + "."
        )
    module.load_state_dict({k: sd[k] for k in own}, strict=True)


def build_tokenizer(path: str | Path) -> NeuroRVQTokenizer:
    """Tokenizer module with the weights of ``path``, in eval mode."""
    sd = read_state_dict(path)
    model = NeuroRVQTokenizer(tokenizer_config(sd))
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
    cfg = foundation_config(sd, pretraining_heads)
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


def read_sidecar(path: str | Path) -> dict:
    """Sidecar metadata of ``path``, or ``{}`` for files without one (official checkpoints)."""
    side = sidecar_path(path)
    return json.loads(side.read_text()) if side.is_file() else {}


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
