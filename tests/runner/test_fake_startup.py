"""The fake backend's per-worker start-up (``FakeSuite.startup_for``), used by bench/scale.py."""

from __future__ import annotations

from proctor.runner.options import RunOptions
from proctor.testing import EPOCH_NS, FakeSuite
from proctor.wire.event import NS_PER_SECOND
from tests.runner.controller_support import passing, run_fake


def test_a_slow_starting_worker_takes_work_only_once_it_is_ready() -> None:
    suite = FakeSuite(passing(40, duration=0.5), startup=0.1, startup_for={1: 5.0})
    outcome = run_fake(suite, RunOptions(concurrency=2))
    assert outcome.result.exit_code == 0
    starts = {
        record.route_code: min(
            (r.start or 0) for r in outcome.records if r.route_code == record.route_code
        )
        for record in outcome.records
    }
    assert (starts["0"] - EPOCH_NS) / NS_PER_SECOND < 1.0
    assert (starts["1"] - EPOCH_NS) / NS_PER_SECOND >= 5.0
