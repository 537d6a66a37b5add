"""Helpers for the controller tests: run a fake suite and look at what came out."""

from __future__ import annotations

from dataclasses import dataclass, field

from proctor.events.collector import collect_records
from proctor.events.sink import ListSink
from proctor.runner.backend import StdinSource
from proctor.runner.controller import Controller
from proctor.runner.history import EMPTY_HISTORY, History
from proctor.runner.options import RunOptions
from proctor.runner.report import Progress, RunResult
from proctor.testing import FakeBackend, FakeSuite, FakeTest
from proctor.wire.record import TestRecord


@dataclass
class RecordingReporter:
    """A reporter that remembers every call, in order."""

    tick_interval: float | None = None
    calls: list[tuple[str, object]] = field(default_factory=list)
    progress: Progress | None = None

    def planned(self, progress: Progress) -> None:
        self.progress = progress
        self.calls.append(("planned", progress.total))

    def record(self, record: TestRecord) -> None:
        self.calls.append(("record", record.test_id))

    def output(self, worker: int | None, data: bytes) -> None:
        self.calls.append(("output", data))

    def notice(self, text: str) -> None:
        self.calls.append(("notice", text))

    def tick(self) -> None:
        self.calls.append(("tick", None))

    def debug_start(self, test_id: str, worker: int, so_far: bytes) -> None:
        self.calls.append(("debug_start", (test_id, so_far)))

    def debug_output(self, data: bytes) -> None:
        self.calls.append(("debug_output", data))

    def debug_end(self, test_id: str) -> None:
        self.calls.append(("debug_end", test_id))

    def finished(self, result: RunResult) -> None:
        self.calls.append(("finished", result.exit_code))

    def of(self, kind: str) -> list[object]:
        return [value for name, value in self.calls if name == kind]


@dataclass
class Outcome:
    result: RunResult
    backend: FakeBackend
    events: ListSink
    reporter: RecordingReporter

    @property
    def records(self) -> list[TestRecord]:
        return collect_records(self.events.events)

    def status_of(self, test_id: str) -> str | None:
        found = [r.status.wire_name for r in self.records if r.test_id == test_id]
        assert len(found) <= 1, f"{test_id} reported {len(found)} times"
        return found[0] if found else None


def run_fake(
    suite: FakeSuite | list[FakeTest],
    options: RunOptions | None = None,
    *,
    history: History = EMPTY_HISTORY,
    backend: FakeBackend | None = None,
    stdin: StdinSource | None = None,
    reporter: RecordingReporter | None = None,
) -> Outcome:
    backend = backend if backend is not None else FakeBackend(suite)
    events = ListSink()
    reporter = reporter if reporter is not None else RecordingReporter()
    controller = Controller(
        backend,
        options or RunOptions(concurrency=2),
        history=history,
        sink=events,
        reporter=reporter,
        stdin=stdin,
    )
    result = controller.run()
    return Outcome(result, backend, events, reporter)


def passing(count: int, *, modules: int = 4, duration: float = 0.001) -> list[FakeTest]:
    return [
        FakeTest(f"pkg.test_m{i % modules}.Case.test_{i:04d}", duration=duration)
        for i in range(count)
    ]
