"""Shared fixtures for the whole suite.

Tests are split by cost: the default tier runs in seconds; ``@pytest.mark.slow``
tests start real processes or chew through large inputs, and
``@pytest.mark.postgres`` ones need the PostgreSQL server (CI runs all of them).
Run only the fast tier with ``pytest -m "not slow"``.
"""

from __future__ import annotations

import pytest

from proctor.wire import v2


@pytest.fixture(params=[True, False], ids=["c", "python"])
def accelerate(request: pytest.FixtureRequest) -> bool:
    """Run a codec test with the C fast paths and with the pure-Python codec."""
    return bool(request.param)


@pytest.fixture
def speedups_available() -> bool:
    return v2.ACCELERATED
