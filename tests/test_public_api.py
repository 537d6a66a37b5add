"""Every package's public names, pinned (httpx's ``test_exported_members.py``, trio's
``test_exports.py``): a name added to or dropped from an ``__all__`` fails here
until this list says so too, and each name resolves to what it claims to be."""

from __future__ import annotations

import importlib
import inspect
import subprocess
import sys
import typing
from pathlib import Path
from types import ModuleType

import pytest

import proctor

SURFACES: dict[str, list[str]] = {
    "proctor.wire": ["event", "jsonl", "junit", "record", "v1", "v2"],
    "proctor.events": [
        "Attachment",
        "CallbackSink",
        "Event",
        "Failure",
        "ListSink",
        "NullSink",
        "RecordCollector",
        "Router",
        "Selection",
        "Sink",
        "Status",
        "Summary",
        "Tagger",
        "Tee",
        "TestFilter",
        "TestRecord",
        "TimestampFiller",
        "collect_records",
        "datetime_to_ns",
        "detect_format",
        "make_decoder",
        "ns_to_datetime",
        "pump",
        "read_events",
        "record_events",
        "records_to_v2",
        "worker_of",
    ],
    "proctor.store": [
        "GarbageReport",
        "HistoryEntry",
        "MemoryStore",
        "RepositoryNotFound",
        "RunCounts",
        "RunInfo",
        "RunMetadata",
        "RunWriter",
        "SchemaTooNew",
        "SlowTest",
        "Store",
        "StoreError",
        "StoreStats",
        "StoreUnavailable",
        "TestStats",
        "UnknownRun",
        "UnknownTest",
        "WriterClosed",
        "capture_metadata",
        "open_store",
    ],
    "proctor.runner": [
        "BackendFactory",
        "Command",
        "EMPTY_HISTORY",
        "EventSinks",
        "Exited",
        "History",
        "Interrupted",
        "Message",
        "Output",
        "Progress",
        "Results",
        "RunOptions",
        "RunReporter",
        "RunResult",
        "RunSession",
        "RunStorage",
        "SessionOptions",
        "SessionResult",
        "StdinLine",
        "StoreHistory",
        "SubprocessBackend",
        "WorkerBackend",
        "WorkerHandle",
        "WorkerSpec",
        "encode_command",
    ],
    "proctor.runner.worker": ["DUMP_SIGNAL", "main"],
    "proctor.triage": [
        "ALGORITHM",
        "ExceptionReport",
        "Frame",
        "Kind",
        "ParsedFailure",
        "Project",
        "Signature",
        "normalise_message",
        "parse_failure",
        "signature_of",
        "signature_of_record",
    ],
    "proctor.bugs": [
        "AmbiguousBugId",
        "Author",
        "BugComment",
        "BugError",
        "BugEvent",
        "BugEventError",
        "BugFilter",
        "BugLink",
        "BugState",
        "Bundle",
        "BundleError",
        "FilterError",
        "MergeResult",
        "Replica",
        "Summary",
        "UnknownBug",
        "current_author",
        "decode_bundle",
        "decode_summary",
        "encode_bundle",
        "encode_summary",
        "fold",
        "import_bundle",
        "make_event",
        "parse_event",
        "parse_filter",
    ],
    "proctor.testing": [
        "EPOCH_NS",
        "FakeBackend",
        "FakeStdin",
        "FakeSuite",
        "FakeTest",
        "FakeWorker",
        "MemoryStore",
    ],
}

DIR_NOT_PINNED: set[str] = set()
"""Packages whose dir() is not yet their __all__ (none now)."""

LAZY = [
    "proctor.wire",
    "proctor.events",
    "proctor.store",
    "proctor.runner",
    "proctor.triage",
    "proctor.bugs",
    "proctor.testing",
]
"""Packages that import their names on first use: importing one loads none of its modules."""


def _packages() -> list[str]:
    root = Path(proctor.__file__).parent
    return sorted(
        ".".join(("proctor", *path.parent.relative_to(root).parts))
        for path in root.rglob("__init__.py")
    )


def test_every_package_with_an_all_is_pinned_here() -> None:
    with_all = [name for name in _packages() if hasattr(importlib.import_module(name), "__all__")]
    assert sorted(with_all) == sorted(SURFACES)


@pytest.mark.parametrize("package", sorted(SURFACES))
def test_the_public_names_are_these(package: str) -> None:
    module = importlib.import_module(package)
    assert sorted(module.__all__) == SURFACES[package]
    assert len(set(module.__all__)) == len(module.__all__)


@pytest.mark.parametrize("package", sorted(SURFACES))
def test_every_public_name_resolves_to_what_it_names(package: str) -> None:
    module = importlib.import_module(package)
    for name in module.__all__:
        value = getattr(module, name)
        if isinstance(value, ModuleType):
            assert value.__name__ == f"{package}.{name}"
        elif typing.get_origin(value) is None and (  # a type alias names no class
            inspect.isclass(value) or inspect.isfunction(value)
        ):
            assert value.__name__ == name, f"{package}.{name} is {value!r}"
            assert value.__module__.startswith("proctor."), f"{package}.{name} is {value!r}"
    with pytest.raises(AttributeError):
        _ = module.NoSuchName


@pytest.mark.parametrize("package", sorted(SURFACES.keys() - DIR_NOT_PINNED))
def test_dir_lists_the_public_names(package: str) -> None:
    module = importlib.import_module(package)
    assert dir(module) == sorted(module.__all__)


def test_the_fakes_and_the_store_fake_are_the_real_objects() -> None:
    import proctor.store
    import proctor.testing
    from proctor.testing import fake_backend

    assert proctor.testing.MemoryStore is proctor.store.MemoryStore
    assert proctor.testing.FakeBackend is fake_backend.FakeBackend
    assert proctor.testing.FakeBackend.__module__ == "proctor.testing.fake_backend"


def test_the_runner_surface_is_the_modules_own_objects() -> None:
    import proctor.runner
    from proctor.runner import backend, history, session

    assert proctor.runner.RunSession is session.RunSession
    assert proctor.runner.BackendFactory is session.BackendFactory
    assert proctor.runner.Message is backend.Message
    assert proctor.runner.EMPTY_HISTORY is history.EMPTY_HISTORY


def test_importing_the_lazy_packages_loads_none_of_their_modules() -> None:
    code = (
        "import sys; "
        + "; ".join(f"import {package}" for package in LAZY)
        + "; print(sorted(m for m in sys.modules if m.startswith('proctor.')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == repr(sorted(LAZY))
