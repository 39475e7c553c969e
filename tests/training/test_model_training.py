"""Tiny NeuroRVQ models trained for a few steps on a cropped segment of real EEG."""

import numpy as np
import pytest
import torch

from neurorvq_stream.engines import NeuroRVQConfig, load_classifier, load_tokenizer
from neurorvq_stream.engines._api import prepare_window
from neurorvq_stream.engines._checkpoint import build_foundation_model, save_checkpoint
from neurorvq_stream.training import marker_epochs
from neurorvq_stream.training._data import CHECKER_CLASSES, continuous_windows
from neurorvq_stream.training._finetune import FinetuneConfig, finetune, predict_proba
from neurorvq_stream.training._loop import Session
from neurorvq_stream.training._pretraining import (
    PretrainConfig,
    new_foundation_model,
    pretrain_foundation_model,
)
from neurorvq_stream.training._tokenizer_training import (
    TokenizerTrainConfig,
    evaluate_tokenizer,
    new_tokenizer,
    train_tokenizer,
)

# Its module-scoped fixtures are built once: every test of the module on one xdist worker.
pytestmark = [pytest.mark.xdist_group("training/test_model_training.py"), pytest.mark.slow]

TINY = NeuroRVQConfig(depth_encoder=1, depth_decoder=1, n_code=64, code_dim=8, layer_scale=False)
CHANNELS = ("cz", "pz", "oz", "o1", "o2", "po7", "po8", "fz")


@pytest.fixture(scope="module")
def segment(s01):
    """Two minutes of sub-s01, 8 posterior-heavy channels, 2-patch windows."""
    cols = [s01.channels.index(c) for c in CHANNELS]
    windows = continuous_windows(s01, n_patches=2, hop_s=1.0, start_s=10.0, stop_s=130.0)
    return windows[:, cols]


def _mean(history, key, part):
    return float(np.mean([h[key] for h in part(history)]))


@pytest.fixture(scope="module")
def trained(segment, tmp_path_factory):
    torch.set_num_threads(1)
    tok = new_tokenizer(TINY, seed=0)
    cfg = TokenizerTrainConfig(steps=60, batch_size=8, max_channels=8, lr=3e-3, warmup_steps=5)
    history = train_tokenizer(tok, segment, CHANNELS, cfg, progress=False)
    return tok, history


def test_tokenizer_losses_fall_and_codebooks_are_used(trained, segment):
    tok, history = trained
    for key in ("amplitude", "signal", "total"):
        first, last = _mean(history, key, lambda h: h[:5]), _mean(history, key, lambda h: h[-5:])
        assert last < 0.9 * first, (key, first, last)
    metrics = evaluate_tokenizer(tok, segment[:16], CHANNELS)
    assert metrics["codebook_usage"] > 0.1
    assert metrics["zscored_mse"] < _mean(history, "signal", lambda h: h[:5])
    initted = [b for n, b in tok.named_buffers() if n.endswith("embedding.initted")]
    assert all(float(b) == 1.0 for b in initted)


def test_saved_tokenizer_reloads_to_the_same_outputs(trained, segment, tmp_path):
    tok, _ = trained
    path = save_checkpoint(tok, tmp_path / "tok.safetensors", channels=CHANNELS)
    engine = load_tokenizer(path)
    x = segment[:3]
    w = prepare_window(x, CHANNELS, tok.config)
    with torch.no_grad():
        expected = tok(w.patches, w.spatial_ix, w.time_ix).numpy()
    np.testing.assert_array_equal(engine.tokenize(x, CHANNELS), expected)
    rec = engine.reconstruct(x, CHANNELS)["reconstruction"]
    assert rec.shape == x.shape and np.isfinite(rec).all()


def test_resumed_tokenizer_run_repeats_the_uninterrupted_one(segment, tmp_path):
    torch.set_num_threads(1)
    cfg = TokenizerTrainConfig(steps=6, batch_size=4, max_channels=4, warmup_steps=2)
    straight = new_tokenizer(TINY, seed=1)
    h_straight = train_tokenizer(straight, segment, CHANNELS, cfg, progress=False)
    first = new_tokenizer(TINY, seed=1)
    session = Session(tmp_path / "run", save_every=100, until=3)
    assert len(train_tokenizer(first, segment, CHANNELS, cfg, progress=False,
                               session=session)) == 3
    resumed = new_tokenizer(TINY, seed=2)  # weights come from the saved state
    h_resumed = train_tokenizer(resumed, segment, CHANNELS, cfg, progress=False,
                                session=Session(tmp_path / "run"))
    assert h_resumed == h_straight
    for name, value in straight.state_dict().items():
        torch.testing.assert_close(resumed.state_dict()[name], value, msg=name)


def test_fm_pretraining_loss_falls_and_head_finetunes(trained, segment, s01, tmp_path):
    tok, _ = trained
    fm = new_foundation_model(tok, depth=1, seed=0)
    cfg = PretrainConfig(steps=40, batch_size=8, max_channels=8, lr=2e-3, warmup_steps=4)
    history = pretrain_foundation_model(fm, tok, segment, CHANNELS, cfg, progress=False)
    first, last = _mean(history, "loss", lambda h: h[:5]), _mean(history, "loss", lambda h: h[-5:])
    assert last < 0.95 * first
    fm_path = save_checkpoint(fm, tmp_path / "fm.safetensors", channels=CHANNELS)

    cols = [s01.channels.index(c) for c in CHANNELS]
    x, y, _ = marker_epochs(s01, CHECKER_CLASSES)
    x = x[:, cols]
    head = build_foundation_model(fm_path, n_out=1)
    losses = finetune(head, x[:200], y[:200], CHANNELS, 2,
                      FinetuneConfig(head_only=True, lr=5e-3, epochs=30), progress=False)
    assert losses[-1] < losses[0]
    proba = predict_proba(head, x[:200], CHANNELS)
    train_acc = float(np.mean(proba.argmax(1) == y[:200]))
    assert train_acc > 0.6

    path = save_checkpoint(head, tmp_path / "head.safetensors", channels=CHANNELS,
                           classes=CHECKER_CLASSES)
    clf = load_classifier(path)
    assert clf.class_names == CHECKER_CLASSES
    np.testing.assert_allclose(clf.probabilities(x[:5], CHANNELS), proba[:5], atol=1e-5)
