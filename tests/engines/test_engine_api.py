"""Public API of engines: validation errors, no state change, checkpoint forms and round trips."""

import json

import numpy as np
import pytest
import torch
from helpers import PARITY_CASES, PARITY_DIR, PARITY_REF

from neurorvq_stream.engines import ELECTRODES, Classifier, load_classifier, load_tokenizer
from neurorvq_stream.engines._checkpoint import (
    build_foundation_model,
    foundation_config,
    read_state_dict,
    save_checkpoint,
    sidecar_path,
)
from neurorvq_stream.engines._format import electrode_indices
from neurorvq_stream.engines._foundation import NeuroRVQFoundationModel

X = PARITY_REF["case2_x"]
CHANNELS = PARITY_CASES[2]["channels"]


def test_electrode_list_and_lookup():
    assert len(ELECTRODES) == 104 and len(set(ELECTRODES)) == 104
    assert ELECTRODES.index("p08") == 66
    np.testing.assert_array_equal(electrode_indices(["A1", "Cz", "tp9"]), [0, 36, 103])
    with pytest.raises(ValueError, match=r"'Czz' \(nearest: cz") as err:
        electrode_indices(["C3", "Czz", "FOO9"])
    assert "'FOO9'" in str(err.value) and "2 channel name(s)" in str(err.value)


def test_channel_names_any_case(tok):
    upper = [c.upper() for c in CHANNELS]
    assert np.array_equal(tok.tokenize(X, upper), tok.tokenize(X, CHANNELS))


@pytest.mark.parametrize(
    ("x", "channels", "match"),
    [
        (X[:, :, :1100], CHANNELS, "not a positive multiple of the 200-sample patch"),
        (X.reshape(1, 8, 12, 100), CHANNELS, "Patch length is 100 samples"),
        (np.zeros((1, 2, 257 * 200), np.float32), ["cz", "pz"], "257 patches"),
        (X[:, :0], [], "channel list is empty"),
        (X, CHANNELS[:-1], "x has 8 channels .* but 7 channel names"),
        (X[0], CHANNELS, "For a single window use x"),
        (X, [*CHANNELS[:-1], "Ozz"], "not NeuroRVQ electrodes: 'Ozz'"),
    ],
)
def test_bad_input_errors(tok, clf, x, channels, match):
    with pytest.raises(ValueError, match=match):
        tok.tokenize(x, channels)
    with pytest.raises(ValueError, match=match):
        clf.logits(x, channels)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_names_channel_and_sample(tok, bad):
    x = X.copy()
    x[0, 3, 417] = bad
    with pytest.raises(ValueError, match=r"channel 'fz' \(index 3\), sample 417"):
        tok.reconstruct(x, CHANNELS)


def test_inference_changes_no_state(tok, clf):
    before = {k: v.clone() for k, v in tok.module.state_dict().items()}
    before_fm = {k: v.clone() for k, v in clf.module.state_dict().items()}
    tok.tokenize(X, CHANNELS)
    tok.reconstruct(X, CHANNELS)
    tok.encode(X, CHANNELS)
    clf.probabilities(X, CHANNELS)
    for ref, model in ((before, tok.module), (before_fm, clf.module)):
        after = model.state_dict()
        assert ref.keys() == after.keys()
        assert all(torch.equal(ref[k], after[k]) for k in ref)


def test_reconstruction_in_microvolts_decodes_from_encode(tok):
    rec = tok.reconstruct(X, CHANNELS)
    enc = tok.encode(X, CHANNELS)
    assert np.array_equal(enc["tokens"], rec["tokens"])
    m = tok.module
    with torch.inference_mode():
        w = tok.prepare(X, CHANNELS)
        q = torch.from_numpy(enc["quantized"])
        amp, sin, cos = m.decode(q, w.spatial_ix, w.time_ix)
        mean = torch.from_numpy(enc["amplitude_mean"]).reshape(-1, 1, 1)
        std = torch.from_numpy(enc["amplitude_std"]).reshape(-1, 1, 1)
        signal = m.spectrum_to_signal(amp, sin, cos, mean, std)
    np.testing.assert_allclose(
        signal.reshape(rec["reconstruction"].shape).numpy(),
        rec["reconstruction"],
        atol=1e-4,
        rtol=1e-5,
    )
    # the log-amplitude statistics come from the input window itself
    spec = np.abs(np.fft.fft(X.reshape(1, -1, 200).astype(np.float64), axis=-1))
    logamp = np.log1p(spec)
    np.testing.assert_allclose(enc["amplitude_mean"], [logamp.mean()], rtol=1e-5)
    np.testing.assert_allclose(enc["amplitude_std"], [logamp.std(ddof=1)], rtol=1e-4)


def test_dft_reconstruction_equals_fft(tok):
    """The matmul inverse DFT equals numpy's real(ifft) for an arbitrary spectrum."""
    rng = np.random.default_rng(0)
    amp, ang = rng.random((1, 3, 200)) * 5, rng.uniform(-np.pi, np.pi, (1, 3, 200))
    ref = np.real(np.fft.ifft(np.expm1(amp) * np.exp(1j * ang), axis=-1))
    t = [torch.tensor(v, dtype=torch.float32) for v in (amp, np.sin(ang), np.cos(ang))]
    ours = tok.module.spectrum_to_signal(
        t[0], t[1], t[2], torch.zeros(1, 1, 1), torch.ones(1, 1, 1)
    )
    np.testing.assert_allclose(ours.numpy(), ref, atol=1e-4)


def test_probabilities_and_class_names(clf):
    p = clf.probabilities(X, CHANNELS)
    assert p.shape == (1, 4)
    np.testing.assert_allclose(p.sum(1), 1.0, rtol=1e-6)
    assert clf.class_names == ("class0", "class1", "class2", "class3")


@pytest.mark.slow
def test_save_load_roundtrip(tmp_path, tok, clf):
    ref_tokens = tok.tokenize(X, CHANNELS)
    ref_logits = clf.logits(X, CHANNELS)
    for suffix in (".safetensors", ".pt"):
        tpath = save_checkpoint(
            tok.module,
            tmp_path / f"tok{suffix}",
            channels=CHANNELS,
            provenance={"from": "parity fixture"},
        )
        assert read_state_dict(tpath).keys() == read_state_dict(PARITY_DIR / "tokenizer.pt").keys()
        tok2 = load_tokenizer(tpath)
        assert np.array_equal(tok2.tokenize(X, CHANNELS), ref_tokens)
        assert tok2.metadata["provenance"] == {"from": "parity fixture"}
        cpath = save_checkpoint(
            clf.module,
            tmp_path / f"clf{suffix}",
            channels=CHANNELS,
            classes=["left", "right", "feet", "tongue"],
        )
        clf2 = load_classifier(cpath)
        np.testing.assert_array_equal(clf2.logits(X, CHANNELS), ref_logits)
        assert clf2.class_names == ("left", "right", "feet", "tongue")
        meta = json.loads(sidecar_path(cpath).read_text())
        assert meta["channels"] == CHANNELS and meta["sampling_rate"] == 200.0


def test_mismatched_checkpoint_errors(tmp_path):
    sd = read_state_dict(PARITY_DIR / "tokenizer.pt")
    del sd["decoder.fc_norm_2.bias"]
    sd["encoder.blocks.0.mlp.fc2.bias"] = torch.zeros(7)
    sd["encoder.extra.weight"] = torch.zeros(3)
    torch.save(sd, tmp_path / "broken.pt")
    with pytest.raises(ValueError, match="missing keys") as err:
        load_tokenizer(tmp_path / "broken.pt")
    msg = str(err.value)
    assert "decoder.fc_norm_2.bias" in msg and "encoder.extra.weight" in msg
    assert "encoder.blocks.0.mlp.fc2.bias: file (7,) vs model (200,)" in msg
    with pytest.raises(ValueError, match="not a NeuroRVQ tokenizer checkpoint"):
        load_tokenizer(PARITY_DIR / "foundation_model.pt")
    with pytest.raises(ValueError, match="not a NeuroRVQ foundation-model checkpoint"):
        load_classifier(PARITY_DIR / "tokenizer.pt")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_tokenizer(tmp_path / "nothing.pt")


def test_pretraining_form(tmp_path, clf):
    """A pretraining-form FM loads for fine-tuning; classification needs a head."""
    cfg = foundation_config(read_state_dict(PARITY_DIR / "foundation_model.pt"))
    pre_cfg = type(cfg)(
        **{
            **cfg.to_dict(),
            "n_out": 0,
            "pretraining_heads": True,
            "n_code": 64,
            "kernels1": cfg.kernels1,
            "kernels2": cfg.kernels2,
        }
    )
    torch.manual_seed(0)
    pre = NeuroRVQFoundationModel(pre_cfg)
    backbone = {
        k: v for k, v in clf.module.state_dict().items() if not k.startswith(("head.", "fc_norm."))
    }
    pre.load_state_dict(backbone, strict=False)
    path = save_checkpoint(pre, tmp_path / "pre.safetensors")
    with pytest.raises(ValueError, match="without a classification head"):
        load_classifier(path)
    model = build_foundation_model(path)
    assert model.config.pretraining_heads and model.config.n_code == 64
    w = clf.prepare(X, CHANNELS)
    mask = torch.zeros(w.spatial_ix.shape, dtype=torch.bool)
    mask[:, ::3] = True
    with torch.inference_mode():
        feats = model.forward_features(w.patches, w.spatial_ix, w.time_ix, mask=mask)
        logits = model.pretraining_logits(feats)
        plain = clf.module.forward_features(w.patches, w.spatial_ix, w.time_ix)
        unmasked = model.forward_features(w.patches, w.spatial_ix, w.time_ix)
    assert logits.shape == (4, 8, 1, 48, 64)
    torch.testing.assert_close(unmasked, plain)
    assert not torch.allclose(feats, plain)
    tuned = build_foundation_model(path, n_out=1, pretraining_heads=False)
    assert tuned.config.n_out == 1 and not tuned.config.pretraining_heads
    binary = Classifier(tuned, {"classes": ["rest", "move"]})
    p = binary.probabilities(X, CHANNELS)
    logit = binary.logits(X, CHANNELS)
    assert logit.shape == (1, 1) and p.shape == (1, 2)
    np.testing.assert_allclose(p[:, 1], 1 / (1 + np.exp(-logit[:, 0])), rtol=1e-5)
    np.testing.assert_allclose(p.sum(1), 1.0, rtol=1e-6)
    assert binary.class_names == ("rest", "move")
