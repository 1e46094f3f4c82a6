"""Shared fixtures: where the CAP corpus lives."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def corpus_dir() -> Path:
    """The CAP test corpus: $CAPCAST_CAP_CORPUS, else the copy in tests/corpus."""
    env = os.environ.get("CAPCAST_CAP_CORPUS")
    path = Path(env) if env else REPO / "tests" / "corpus"
    if not (path / "MANIFEST.tsv").is_file():
        raise RuntimeError(f"CAP corpus not found at {path} (set CAPCAST_CAP_CORPUS)")
    return path


@pytest.fixture(scope="session")
def corpus() -> Path:
    """Path of the CAP corpus folder (with MANIFEST.tsv)."""
    return corpus_dir()
