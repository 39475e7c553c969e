"""A deliberately plain NeuroRVQ, written the way the authors formulate it, as a speed baseline.

Same weights (official keys) and same numbers as ``engines``, but: the 4 branches run one
after another, attention is written out (q k^T, softmax, v), every RVQ level builds the full
distance matrix ``|z|^2 + |e|^2 - 2 z e^T`` and the one-hot code matrix whose column sums are
the codebook usage the authors accumulate in eval mode (computed here, never stored), and
the signal goes through ``torch.fft``. The benchmark also checks it gives the same tokens.

``AuthorsCode`` runs the authors' actual modules beside it, imported from a local clone of
their repository whose path the benchmarks take as ``--authors PATH``.
"""

from __future__ import annotations

from functools import partial

import torch
import torch.nn.functional as F

Tensor = torch.Tensor


class NaiveNeuroRVQ:
    """Tokenizer and/or classifier evaluated from raw state_dicts, branch by branch."""

    def __init__(
        self,
        tokenizer_sd: dict[str, Tensor] | None,
        fm_sd: dict[str, Tensor] | None,
        num_heads: int = 10,
    ) -> None:
        self.tok = tokenizer_sd
        self.fm = fm_sd
        self.heads = num_heads
        self.n_branches = 4

    @staticmethod
    def _ln(x: Tensor, sd: dict[str, Tensor], key: str, eps: float = 1e-5) -> Tensor:
        return F.layer_norm(x, x.shape[-1:], sd[f"{key}.weight"], sd[f"{key}.bias"], eps)

    def _block(self, x: Tensor, sd: dict[str, Tensor], key: str) -> Tensor:
        b, n, c = x.shape
        h = self._ln(x, sd, f"{key}.norm1")
        qb, vb = sd[f"{key}.attn.q_bias"], sd[f"{key}.attn.v_bias"]
        qkv = F.linear(h, sd[f"{key}.attn.qkv.weight"], torch.cat((qb, torch.zeros_like(qb), vb)))
        q, k, v = qkv.reshape(b, n, 3, self.heads, -1).permute(2, 0, 3, 1, 4)
        q = self._ln(q, sd, f"{key}.attn.q_norm", 1e-6)
        k = self._ln(k, sd, f"{key}.attn.k_norm", 1e-6)
        attn = ((q * q.shape[-1] ** -0.5) @ k.transpose(-2, -1)).softmax(dim=-1)
        a = F.linear(
            (attn @ v).transpose(1, 2).reshape(b, n, c),
            sd[f"{key}.attn.proj.weight"],
            sd[f"{key}.attn.proj.bias"],
        )
        if f"{key}.gamma_1" in sd:
            a = sd[f"{key}.gamma_1"] * a
        x = x + a
        h = self._ln(x, sd, f"{key}.norm2")
        h = F.gelu(F.linear(h, sd[f"{key}.mlp.fc1.weight"], sd[f"{key}.mlp.fc1.bias"]))
        h = F.linear(h, sd[f"{key}.mlp.fc2.weight"], sd[f"{key}.mlp.fc2.bias"])
        if f"{key}.gamma_2" in sd:
            h = sd[f"{key}.gamma_2"] * h
        return x + h

    def _patch_embed(self, x: Tensor, sd: dict[str, Tensor], pre: str, i: int) -> Tensor:
        b, n, _ = x.shape
        h = x.unsqueeze(1)
        for stage, pool in ((1, 2), (2, 4)):
            w = sd[f"{pre}conv{stage}_{i}.weight"]
            h = F.conv2d(h, w, sd[f"{pre}conv{stage}_{i}.bias"], padding=(0, w.shape[-1] // 2))
            h = F.group_norm(
                h, 4, sd[f"{pre}norm{stage}_{i}.weight"], sd[f"{pre}norm{stage}_{i}.bias"]
            )
            h = F.avg_pool2d(F.gelu(h), (1, pool))
        return h.permute(0, 2, 3, 1).reshape(b, n, -1)

    def _backbone(self, tokens: Tensor, sd: dict[str, Tensor], pre: str, s: Tensor, t: Tensor):
        b = tokens.shape[0]
        pos = sd[f"{pre}pos_embed"]
        cls = (sd[f"{pre}cls_token"] + pos[0]).expand(b, -1, -1)
        x = torch.cat((cls, tokens + pos[s] + sd[f"{pre}time_embed"][t]), dim=1)
        depth = len(
            {k.split(".")[len(pre.split("."))] for k in sd if k.startswith(f"{pre}blocks.")}
        )
        for n in range(depth):
            x = self._block(x, sd, f"{pre}blocks.{n}")
        return x[:, 1:]

    @staticmethod
    def _mlp(x: Tensor, sd: dict[str, Tensor], key: str, act, last_tanh: bool) -> Tensor:
        x = F.linear(
            act(F.linear(x, sd[f"{key}.0.weight"], sd[f"{key}.0.bias"])),
            sd[f"{key}.2.weight"],
            sd[f"{key}.2.bias"],
        )
        return torch.tanh(x) if last_tanh else x

    def _quantize(self, z: Tensor, i: int) -> tuple[Tensor, Tensor]:
        sd = self.tok
        flat = z.reshape(-1, z.shape[-1])
        residual, quantized, codes = flat, torch.zeros_like(flat), []
        for level in range(8):
            e = sd[f"quantize_{i}.layers.{level}.embedding.weight"]
            u = F.normalize(residual, dim=-1)
            d = (
                u.pow(2).sum(1, keepdim=True)
                + e.pow(2).sum(1)
                - 2 * torch.einsum("bd,nd->bn", u, e)
            )
            idx = d.argmin(dim=1)
            zq = F.embedding(idx, e)
            encodings = F.one_hot(idx, e.shape[0]).type(u.dtype)
            encodings.sum(0)  # the usage the authors fold into cluster_size (not stored here)
            residual, quantized = residual - zq, quantized + zq
            codes.append(idx.reshape(z.shape[:-1]))
        return torch.stack(codes), quantized.reshape(z.shape)

    def tokenize(self, patches: Tensor, s: Tensor, t: Tensor) -> tuple[Tensor, list[Tensor]]:
        """Codes [4, 8, B, N] and the per-branch quantized vectors."""
        sd, codes, quantized = self.tok, [], []
        for i in range(1, self.n_branches + 1):
            h = self._patch_embed(patches, sd, "encoder.patch_embed.", i)
            h = self._ln(self._backbone(h, sd, "encoder.", s, t), sd, f"encoder.fc_norm_{i}")
            c, q = self._quantize(self._mlp(h, sd, f"encode_task_layer_{i}", torch.tanh, False), i)
            codes.append(c)
            quantized.append(q)
        return torch.stack(codes), quantized

    def reconstruct(self, patches: Tensor, s: Tensor, t: Tensor) -> tuple[Tensor, Tensor]:
        """Codes and the reconstruction (B, N, 200) in uV, through torch.fft."""
        sd = self.tok
        codes, quantized = self.tokenize(patches, s, t)
        feats = []
        for i, q in enumerate(quantized, start=1):
            w = sd[f"decoder.patch_embed_{i}.proj.weight"]
            h = F.conv2d(
                q.permute(0, 2, 1).unsqueeze(-1), w, sd[f"decoder.patch_embed_{i}.proj.bias"]
            )
            h = self._backbone(h.squeeze(-1).permute(0, 2, 1), sd, "decoder.", s, t)
            feats.append(self._ln(h, sd, f"decoder.fc_norm_{i}"))
        h = torch.cat(feats, dim=-1)
        amp = self._mlp(h, sd, "decode_task_layer_amplitude", F.gelu, False)
        sin = self._mlp(h, sd, "decode_task_layer_angle_sin", torch.tanh, True)
        cos = self._mlp(h, sd, "decode_task_layer_angle_cos", torch.tanh, True)
        log_amp = torch.log1p(torch.abs(torch.fft.fft(patches, dim=-1)))
        mean = log_amp.mean(dim=(1, 2), keepdim=True)
        std = log_amp.var(dim=(1, 2), keepdim=True).clamp(min=1e-8).sqrt()
        spectrum = torch.expm1(amp * std + mean) * torch.complex(cos, sin)
        return codes, torch.fft.ifft(spectrum, dim=-1).real

    def logits(self, patches: Tensor, s: Tensor, t: Tensor) -> Tensor:
        """Fine-tuned FM logits (B, n_out), branch by branch."""
        sd = self.fm
        feats = [
            self._backbone(self._patch_embed(patches, sd, "patch_embed.", i), sd, "", s, t)
            for i in range(1, self.n_branches + 1)
        ]
        pooled = torch.cat(feats, dim=-1).mean(dim=1)
        return F.linear(self._ln(pooled, sd, "fc_norm"), sd["head.weight"], sd["head.bias"])


class AuthorsCode:
    """The authors' own modules, imported from a clone of their repository, same weights.

    ``path`` is a checkout of github.com/KonstantinosBarmpas/NeuroRVQ (nothing of it is part
    of this repository; it needs ``einops`` and ``pyyaml``). Their tokenizer's eval forward
    updates its codebook-usage buffers, as in their code.
    """

    def __init__(
        self, path: str, tokenizer_sd: dict[str, Tensor], fm_sd: dict[str, Tensor], n_out: int
    ) -> None:
        import sys
        from pathlib import Path

        import yaml
        from torch import nn

        root = Path(path)
        if not (root / "NeuroRVQ" / "NeuroRVQ.py").is_file():
            raise FileNotFoundError(
                f"{path!r} is not a checkout of the authors' repository "
                "(no NeuroRVQ/NeuroRVQ.py); clone github.com/KonstantinosBarmpas/NeuroRVQ."
            )
        sys.path.insert(0, str(root / "NeuroRVQ"))  # their modules import each other flat
        import NeuroRVQ as authors  # their NeuroRVQ/NeuroRVQ.py
        from NeuroRVQ_modules import get_encoder_decoder_params

        args = yaml.safe_load((root / "flags" / "NeuroRVQ_EEG_v1.yml").read_text())
        args["n_global_electrodes"] = 104
        enc, dec = get_encoder_decoder_params(args)
        self.tokenizer = authors.NeuroRVQTokenizer(
            enc, dec, n_code=args["n_code"], code_dim=args["code_dim"],
            decoder_out_dim=args["decoder_out_dim"],
        ).eval()
        self.tokenizer.load_state_dict(tokenizer_sd)
        self.fm = authors.NeuroRVQFM(
            n_patches=args["n_patches"], patch_size=args["patch_size"],
            in_chans=args["in_chans_second_stage"], out_chans=args["out_chans_second_stage"],
            num_classes=0, embed_dim=args["embed_dim_second_stage"],
            depth=args["depth_second_stage"], num_heads=args["num_heads_second_stage"],
            mlp_ratio=args["mlp_ratio_second_stage"], qkv_bias=args["qkv_bias_second_stage"],
            qk_norm=partial(nn.LayerNorm, eps=1e-6), init_values=args["init_values_second_stage"],
            n_global_electrodes=104, use_as_encoder=True, vocab_size=args["n_code"],
        ).eval()
        # Their fine-tuning attaches these two; the forward then returns head(fc_norm(mean)).
        self.fm.fc_norm = nn.LayerNorm(4 * args["embed_dim_second_stage"])
        self.fm.head = nn.Linear(4 * args["embed_dim_second_stage"], n_out)
        missing, unexpected = self.fm.load_state_dict(fm_sd, strict=False)
        if unexpected or any(not k.startswith("head_") for k in missing):
            raise RuntimeError(f"authors' FM keys differ: {missing} / {unexpected}")

    def tokens(self, x4: Tensor, s: Tensor, t: Tensor) -> Tensor:
        """Codes [4, 8, B, C*A] (their get_tokens) of windows x4 (B, C, A, 200)."""
        return self.tokenizer.get_tokens(x4, t.int(), s.int())["token"]

    def reconstruct(self, x3: Tensor, s: Tensor, t: Tensor) -> tuple[Tensor, Tensor]:
        """Their tokenizer forward: window-standardized input and reconstruction."""
        return self.tokenizer(x3, t.int(), s.int())

    def logits(self, x4: Tensor, s: Tensor, t: Tensor) -> Tensor:
        return self.fm(x4, t.int(), s.int())[0]
