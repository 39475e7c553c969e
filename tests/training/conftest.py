"""Shared real-EEG fixtures for the training tests (loaded once per session)."""

import pytest

from training import load_recording


@pytest.fixture(scope="session")
def s01():
    """sub-s01 through the live preprocessing and BioSemi -> NeuroRVQ position mapping."""
    return load_recording("s01")
