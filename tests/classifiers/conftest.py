"""Classifier fixtures: the shipped models, loaded once per session."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.settings import load_settings

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def classifier():  # type: ignore[no-untyped-def]
    """The classifier as a fresh install has it: shipped artifacts, repo config."""
    from classifiers.classify import Classifier

    settings = load_settings(config_dir=REPO / "config", data_dir=REPO / "var" / "no-models")
    return Classifier.load(settings)
