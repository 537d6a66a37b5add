"""The labelled corpus, built once per session for the slow triage tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from proctor.testing.triage_corpus import Sample, build_corpus


@pytest.fixture(scope="session")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> list[Sample]:
    """Two commits of the generated suite, each its own run (two real pytest runs: the
    directory, temporary paths, values and addresses differ between them too)."""
    where: Path = tmp_path_factory.mktemp("corpus")
    return build_corpus(where, commits=2, runs=1)
