"""The small public inference API: windows in microvolts + channel names -> numpy outputs.

``Tokenizer`` and ``Classifier`` validate the input (so a bad window fails here with a
message, not deep inside torch), build the patch/index tensors and run the networks under
``torch.inference_mode()``, which changes no state of the modules, and :func:`ieee_fp32`,
which keeps fp32 math fp32 (no TF32) during the call only.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ._checkpoint import CheckpointError, build_foundation_model, build_tokenizer, read_sidecar
from ._config import NeuroRVQConfig
from ._format import electrode_indices
from ._foundation import NeuroRVQFoundationModel
from ._tokenizer import NeuroRVQTokenizer, window_standardize

#: The per-backend fp32 precision switches of PyTorch (>= 2.9): TF32 on CUDA, implicit
#: TF32/bf16 in oneDNN on CPU. PyTorch defaults cuDNN convolutions to TF32 on GPUs that
#: have it, which changes tokens (99.7 % agreement with the authors' on an H100).
_FP32_SWITCHES = (
    ("cuda", "matmul"),
    ("cudnn", "conv"),
    ("cudnn", "rnn"),
    ("mkldnn", "matmul"),
    ("mkldnn", "conv"),
    ("mkldnn", "rnn"),
)


@contextlib.contextmanager
def ieee_fp32() -> Iterator[None]:
    """Run fp32 math in IEEE fp32 inside the block and restore the caller's settings after.

    The new-style ``fp32_precision`` switches decide; PyTorch 2.13 also keeps a legacy
    cuDNN flag that must agree with them, or legacy reads (``torch.export`` makes one)
    raise, so it is set to False inside the block and restored after as well.
    """
    switches = [getattr(getattr(torch.backends, lib), op) for lib, op in _FP32_SWITCHES]
    saved = [switch.fp32_precision for switch in switches]
    try:
        legacy_cudnn = torch.backends.cudnn.allow_tf32
    except RuntimeError:  # the caller mixed the two APIs; PyTorch's default is True
        legacy_cudnn = True
    try:
        torch.backends.cudnn.allow_tf32 = False
        for switch in switches:
            switch.fp32_precision = "ieee"
        yield
    finally:
        torch.backends.cudnn.allow_tf32 = legacy_cudnn
        for switch, value in zip(switches, saved, strict=True):
            switch.fp32_precision = value


@contextlib.contextmanager
def _exact() -> Iterator[None]:
    """Inference mode + IEEE fp32: how every front-end call runs the networks."""
    with torch.inference_mode(), ieee_fp32():
        yield


@dataclass(frozen=True)
class PreparedWindow:
    """Network inputs for a batch of windows: patches (B, C*A, P), indices (B, C*A)."""

    patches: torch.Tensor
    spatial_ix: torch.Tensor
    time_ix: torch.Tensor
    n_channels: int
    n_patches: int


def patch_indices(
    channels: Sequence[str], n_patches: int, n_times: int = 256
) -> tuple[np.ndarray, np.ndarray]:
    """Spatial and temporal index vectors (C*A,) for channel-major tokens.

    The temporal index is right-aligned: patch j of A gets ``n_times - A + j``.
    """
    spatial = np.repeat(electrode_indices(channels), n_patches)
    temporal = np.tile(np.arange(n_times - n_patches, n_times, dtype=np.int64), len(channels))
    return spatial, temporal


def prepare_window(
    x: np.ndarray | torch.Tensor,
    channels: Sequence[str],
    config: NeuroRVQConfig,
    device: torch.device | str = "cpu",
) -> PreparedWindow:
    """Check a window batch ``x`` (B, C, A*P) or (B, C, A, P) and build the network inputs."""
    arr = x.detach().cpu().numpy() if torch.is_tensor(x) else np.asarray(x)
    p = config.patch_size
    if arr.ndim == 4:
        if arr.shape[-1] != p:
            raise ValueError(
                f"Patch length is {arr.shape[-1]} samples; NeuroRVQ patches are {p} samples "
                f"(1 s at 200 Hz). Resample to 200 Hz and cut {p}-sample patches."
            )
        arr = arr.reshape(*arr.shape[:2], -1)
    if arr.ndim != 3:
        raise ValueError(
            f"x must be (batch, channels, samples) or (batch, channels, patches, {p}); got "
            f"shape {arr.shape}. For a single window use x[None]."
        )
    b, c, t = arr.shape
    if len(channels) == 0 or c == 0:
        raise ValueError("The channel list is empty: give at least one channel name and data.")
    if len(channels) != c:
        raise ValueError(
            f"x has {c} channels (axis 1) but {len(channels)} channel names were given."
        )
    if b == 0:
        raise ValueError("x has an empty batch axis (batch 0).")
    if t == 0 or t % p:
        raise ValueError(
            f"Window length {t} samples is not a positive multiple of the {p}-sample patch; "
            f"give A*{p} samples at 200 Hz (e.g. {max(1, round(t / p)) * p})."
        )
    a = t // p
    if a > config.n_times:
        raise ValueError(
            f"The window has {a} patches; this model has time embeddings for at most "
            f"{config.n_times} ({config.n_times} s at 200 Hz). Use a shorter window."
        )
    if not np.issubdtype(arr.dtype, np.number) or np.iscomplexobj(arr):
        raise TypeError(f"x must hold real numbers (microvolts), got dtype {arr.dtype}.")
    arr = arr.astype(np.float32, copy=False)
    finite = np.isfinite(arr)
    if not finite.all():
        bad = np.argwhere(~finite)
        bi, ci, si = (int(v) for v in bad[0])
        per_ch = sorted({channels[int(k)] for k in bad[:, 1]})
        raise ValueError(
            f"x holds {len(bad)} NaN/inf value(s) in channel(s) {per_ch}; the first is "
            f"{arr[bi, ci, si]} at batch {bi}, channel {channels[ci]!r} (index {ci}), sample "
            f"{si}. Interpolate or drop those channels before calling the engine."
        )
    spatial, temporal = patch_indices(channels, a, config.n_times)
    dev = torch.device(device)
    patches = torch.from_numpy(np.ascontiguousarray(arr)).reshape(b, c * a, p).to(dev)
    return PreparedWindow(
        patches=patches,
        spatial_ix=torch.from_numpy(spatial).to(dev).expand(b, -1),
        time_ix=torch.from_numpy(temporal).to(dev).expand(b, -1),
        n_channels=c,
        n_patches=a,
    )


class _Engine:
    """Common parts of the tokenizer and classifier front ends."""

    def __init__(self, module: torch.nn.Module, metadata: dict | None) -> None:
        self.module = module.eval()
        self.metadata = dict(metadata or {})
        self.config: NeuroRVQConfig = module.config

    @property
    def device(self) -> torch.device:
        return next(self.module.parameters()).device

    def prepare(self, x: np.ndarray | torch.Tensor, channels: Sequence[str]) -> PreparedWindow:
        """Validated network inputs for ``x`` and ``channels`` on this engine's device."""
        return prepare_window(x, channels, self.config, self.device)


class Tokenizer(_Engine):
    """NeuroRVQ tokenizer front end (``tokenize``, ``encode``, ``reconstruct``).

    The front end serves frozen weights, so it prepares the exact screened nearest-code
    search once (``search``, an :class:`engines._nearest.CodeSearch`; its ``stats`` count
    how often the fp32 fallback ran). ``screen`` picks its kind ("auto", "int8", "bf16",
    "none" for the plain fp32 search); tokens are identical whichever. Rebuild the
    Tokenizer if the module's codebooks are changed afterwards.
    """

    module: NeuroRVQTokenizer

    def __init__(
        self, module: NeuroRVQTokenizer, metadata: dict | None, screen: str = "auto"
    ) -> None:
        super().__init__(module, metadata)
        with torch.inference_mode():
            self.search = module.code_search(screen)

    def _quantize(self, w: PreparedWindow) -> tuple[torch.Tensor, torch.Tensor]:
        m = self.module
        return self.search.quantize(m.encode_features(w.patches, w.spatial_ix, w.time_ix))

    def tokenize(self, x: np.ndarray | torch.Tensor, channels: Sequence[str]) -> np.ndarray:
        """Token ids, int64 [branches, levels, B, C*A] (channel-major); no decoder run."""
        w = self.prepare(x, channels)
        with _exact():
            codes = self._quantize(w)[0]
        return codes.cpu().numpy()

    def encode(
        self, x: np.ndarray | torch.Tensor, channels: Sequence[str]
    ) -> dict[str, np.ndarray]:
        """Tokens plus what decoding them needs: quantized vectors and amplitude mean/std."""
        w = self.prepare(x, channels)
        with _exact():
            codes, quantized = self._quantize(w)
            mean, std = self.module.amplitude_stats(w.patches)
        return {
            "tokens": codes.cpu().numpy(),
            "quantized": quantized.cpu().numpy(),
            "amplitude_mean": mean.reshape(-1).cpu().numpy(),
            "amplitude_std": std.reshape(-1).cpu().numpy(),
        }

    def reconstruct(
        self, x: np.ndarray | torch.Tensor, channels: Sequence[str]
    ) -> dict[str, np.ndarray]:
        """Reconstruction (B, C, A*P) in uV, window z-scored input/reconstruction, tokens."""
        w = self.prepare(x, channels)
        with _exact():
            m = self.module
            codes, quantized = self._quantize(w)
            amplitude, sin, cos = m.decode(quantized, w.spatial_ix, w.time_ix)
            mean, std = m.amplitude_stats(w.patches)
            signal = m.spectrum_to_signal(amplitude, sin, cos, mean, std)
            b = signal.shape[0]
            out = {
                "reconstruction": signal.reshape(b, w.n_channels, -1),
                "std_x": window_standardize(w.patches),
                "std_reconstruction": window_standardize(signal),
                "tokens": codes,
            }
        return {k: v.cpu().numpy() for k, v in out.items()}


class Classifier(_Engine):
    """Fine-tuned foundation model front end (``logits``, ``probabilities``)."""

    module: NeuroRVQFoundationModel

    @property
    def class_names(self) -> tuple[str, ...]:
        """Names from the sidecar, else ``class0..``; binary heads (n_out=1) have two."""
        n = 2 if self.config.n_out == 1 else self.config.n_out
        names = tuple(self.metadata.get("classes") or ())
        return names if len(names) == n else tuple(f"class{i}" for i in range(n))

    def logits(self, x: np.ndarray | torch.Tensor, channels: Sequence[str]) -> np.ndarray:
        """Raw head outputs, float32 (B, n_out)."""
        w = self.prepare(x, channels)
        with _exact():
            return self.module(w.patches, w.spatial_ix, w.time_ix).cpu().numpy()

    def probabilities(self, x: np.ndarray | torch.Tensor, channels: Sequence[str]) -> np.ndarray:
        """Class probabilities (B, n_classes): sigmoid -> [1-p, p] for one output, else softmax."""
        return logits_to_probabilities(self.logits(x, channels))


def logits_to_probabilities(logits: np.ndarray) -> np.ndarray:
    """Sigmoid (two columns) for single-output heads, softmax otherwise."""
    logits = np.asarray(logits, dtype=np.float64)
    if logits.shape[-1] == 1:
        p = 1.0 / (1.0 + np.exp(-logits))
        return np.concatenate((1.0 - p, p), axis=-1).astype(np.float32)
    z = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return (z / z.sum(axis=-1, keepdims=True)).astype(np.float32)


def load_tokenizer(
    path: str | Path, device: torch.device | str = "cpu", screen: str = "auto"
) -> Tokenizer:
    """Tokenizer from an official ``.pt`` or a ``.safetensors`` checkpoint.

    ``screen``: how the nearest codes are searched (see :class:`Tokenizer`).
    """
    return Tokenizer(build_tokenizer(path).to(device), read_sidecar(path), screen)


def load_classifier(path: str | Path, device: torch.device | str = "cpu") -> Classifier:
    """Classifier from a fine-tuned foundation-model checkpoint (needs ``fc_norm`` + ``head``)."""
    model = build_foundation_model(path, pretraining_heads=False)
    if model.config.n_out <= 0:
        raise CheckpointError(
            f"Checkpoint {str(path)!r} is a foundation model without a classification head "
            "(pretraining form). Fine-tune it first (training/), or load it with "
            "engines.build_foundation_model(path, n_out=...) to add a fresh head."
        )
    return Classifier(model.to(device), read_sidecar(path))
