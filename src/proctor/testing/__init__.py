"""Helpers for testing and measuring Proctor: fakes of its seams, generated inputs
with known answers.

The fakes, for Proctor's own tests and for anyone building on the runner or the
store (the pattern of httpx's ``MockTransport`` and ``trio.testing``):

* :class:`FakeBackend` (:mod:`proctor.testing.fake_backend`): worker processes
  simulated on a virtual clock, speaking the real worker protocol, behind the
  :class:`~proctor.runner.WorkerBackend` protocol; its tests are
  :class:`FakeTest` descriptions in a :class:`FakeSuite`, each worker a
  :class:`FakeWorker`, and :class:`FakeStdin` types a debugger's input.
  :data:`EPOCH_NS` is the wall time of virtual time zero.
* :class:`MemoryStore`: the in-memory store, the reference semantics of the
  store contract (its home is :mod:`proctor.store`).

Generated inputs: :mod:`proctor.testing.triage_corpus` (a labelled corpus of real
pytest failures) and :mod:`proctor.testing.clustering` (B-cubed scoring).

Nothing of Proctor imports this package (``tests/test_layers.py``); the tests and
the benchmarks do. Names are imported on first use (PEP 562), so that importing
one submodule does not load the runner or the store.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from proctor.store.memory import MemoryStore
    from proctor.testing.fake_backend import (
        EPOCH_NS,
        FakeBackend,
        FakeStdin,
        FakeSuite,
        FakeTest,
        FakeWorker,
    )

_HOMES = {
    "EPOCH_NS": "proctor.testing.fake_backend",
    "FakeBackend": "proctor.testing.fake_backend",
    "FakeStdin": "proctor.testing.fake_backend",
    "FakeSuite": "proctor.testing.fake_backend",
    "FakeTest": "proctor.testing.fake_backend",
    "FakeWorker": "proctor.testing.fake_backend",
    "MemoryStore": "proctor.store.memory",
}

__all__ = [
    "EPOCH_NS",
    "FakeBackend",
    "FakeStdin",
    "FakeSuite",
    "FakeTest",
    "FakeWorker",
    "MemoryStore",
]


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'proctor.testing' has no attribute {name!r}")
    import importlib  # here, so that importing a submodule does not load it

    value = getattr(importlib.import_module(home), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
