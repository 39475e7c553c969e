"""Test-wide set-up and shared fixtures.

Loopback-only LSL and offscreen Qt are set before anything imports them (liblsl reads its
configuration once). The parity checkpoints, the engines loaded from them and the
preprocessed bundled recordings are shared as fixtures, so no test file builds its own
copy of them; what is not a fixture (timing rules, the parity cases) is in ``helpers``.

Everything a run writes stays in one scratch folder made for it (``pytest_configure``) and
removed at its end: the engine cache (``NEURORVQ_CACHE_DIR``), the per-user caches that
platformdirs and matplotlib would otherwise fill (``XDG_CACHE_HOME``, ``MPLCONFIGDIR``), and
the expensive fixtures that every pytest-xdist worker needs (``helpers.computed_once``).
Workers inherit the folder through the environment, so they share one engine cache and
compute each shared fixture once between them.
"""

import os
import shutil
import tempfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
os.environ.setdefault("LSLAPICFG", str(REPO / "streamer" / "lsl_api_loopback.cfg"))
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
# The suite runs in parallel worker processes: one compute thread each, waiting passively.
# With torch's and BLAS's default of a thread per core in every worker, 4 workers on 2
# cores spun against each other (a 9 s decoder fit took 135 s).
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
SCRATCH_ENV = "NEURORVQ_TEST_SCRATCH"


def pytest_configure(config: pytest.Config) -> None:
    """The controller (or a run without xdist) makes the run's scratch folder."""
    if hasattr(config, "workerinput") or SCRATCH_ENV in os.environ:
        return
    scratch = Path(tempfile.mkdtemp(prefix="neurorvq-tests-"))
    config.stash[_SCRATCH] = scratch
    os.environ[SCRATCH_ENV] = str(scratch)
    os.environ["NEURORVQ_CACHE_DIR"] = str(scratch / "engines")
    os.environ["XDG_CACHE_HOME"] = str(scratch / "cache")
    os.environ["MPLCONFIGDIR"] = str(scratch / "matplotlib")


def pytest_unconfigure(config: pytest.Config) -> None:
    scratch = config.stash.get(_SCRATCH, None)
    if scratch is not None:
        shutil.rmtree(scratch, ignore_errors=True)
        del os.environ[SCRATCH_ENV]


_SCRATCH = pytest.StashKey[Path]()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Slow tests first: xdist hands out tests in this order, so the long replays start while
    the quick tests fill the gaps beside them, instead of starting last and running alone."""
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)


@pytest.fixture(scope="session")
def repo() -> Path:
    """The repository root (scripts such as build_engine.py live there)."""
    return REPO


@pytest.fixture(scope="session")
def parity_tokenizer() -> Path:
    from helpers import PARITY_DIR

    return PARITY_DIR / "tokenizer.pt"


@pytest.fixture(scope="session")
def parity_classifier() -> Path:
    """A fine-tuned foundation model with a 4-class head."""
    from helpers import PARITY_DIR

    return PARITY_DIR / "foundation_model.pt"


@pytest.fixture(scope="session")
def tok(parity_tokenizer: Path):
    """The parity tokenizer through the Python API."""
    from neurorvq_stream.engines import load_tokenizer

    return load_tokenizer(parity_tokenizer)


@pytest.fixture(scope="session")
def clf(parity_classifier: Path):
    """The parity classifier through the Python API."""
    from neurorvq_stream.engines import load_classifier

    return load_classifier(parity_classifier)


@pytest.fixture(scope="session")
def s01():
    """sub-s01 through the live preprocessing and BioSemi -> NeuroRVQ position mapping."""
    from helpers import preprocessed

    return preprocessed("s01")


@pytest.fixture(scope="session")
def s02():
    """sub-s02 (held out) through the live preprocessing and position mapping."""
    from helpers import preprocessed

    return preprocessed("s02")


@pytest.fixture(scope="session")
def tiny_foundation_model(tmp_path_factory) -> Path:
    """A one-block foundation model (random weights) saved as .safetensors: fast features."""
    from neurorvq_stream.engines import NeuroRVQConfig
    from neurorvq_stream.engines._checkpoint import save_checkpoint
    from neurorvq_stream.training._pretraining import new_foundation_model
    from neurorvq_stream.training._tokenizer_training import new_tokenizer

    tiny = NeuroRVQConfig(depth_encoder=1, depth_decoder=1, n_code=32, code_dim=8,
                          layer_scale=False)
    fm = new_foundation_model(new_tokenizer(tiny), depth=1, seed=0)
    return save_checkpoint(fm, tmp_path_factory.mktemp("fm") / "tiny_fm.safetensors")


@pytest.fixture(scope="session")
def checker_epochs(s01):
    """sub-s01 checker left/right epochs (1 s from the marker) on 10 channels, with spec."""
    from helpers import SMALL_CHANNELS

    from neurorvq_stream.decoders import WindowSpec
    from neurorvq_stream.training import marker_epochs
    from neurorvq_stream.training._decoder_set import LabelledEpochs

    classes = ("checker-left", "checker-right")
    x, y, _ = marker_epochs(s01, classes, offset=0.0, n_patches=1)
    cols = [s01.channels.index(c) for c in SMALL_CHANNELS]
    spec = WindowSpec(mode="markers", n_patches=1, marker_offset=0.0, labels=classes,
                      channels=SMALL_CHANNELS)
    return LabelledEpochs(x[:, cols], y, classes, spec, {c: (c,) for c in classes})
