"""One-shot mode: the suite as a plain subunit v2 stream on stdout, then exit.

This is what ``python -m subunit.run`` and stestr's runner do, so other tools
can drive the worker the same way:

* ``--list``: an ``exists`` event per test, in discovery order (failed imports
  included, as ``unittest.loader._FailedTest.<module>`` tests);
* otherwise: ``exists`` for every test selected (all of them, or the ids of
  ``--load-list FILE`` in the file's order), then each test's events as it
  runs. Unlike stestr's runner, a ``--load-list`` keeps its order and an id
  that does not exist fails (rather than vanishing).

The stream goes to the original stdout, which the worker keeps for itself:
what tests print is captured per test (or, with ``--no-capture``, sent to
stderr), so it can never corrupt the stream. Exit status 0 means the stream
is complete, whatever the tests' outcomes (as for ``subunit.run``).
"""

from __future__ import annotations

from collections.abc import Sequence

from proctor.runner.worker.suite import Runtime, Suite, SuiteBody
from proctor.wire.event import Event, Status

__all__ = ["oneshot_body", "read_load_list"]


def read_load_list(path: str) -> list[str]:
    """Ids from a load-list file, in its order: ``proctor run --load-list``'s parser.

    One id per line; blank lines and lines starting with ``#`` are skipped; a
    ``#`` inside an id is part of it (:func:`proctor.runner.selection.parse_list`).
    Raises ``ValueError`` (a ``SelectionError``) when the file cannot be read.
    """
    from proctor.runner.selection import read_id_file  # only with --load-list

    return read_id_file(path)


def oneshot_body(runtime: Runtime, *, list_only: bool, ids: Sequence[str] | None) -> SuiteBody:
    """What one-shot mode does with the loaded suite."""

    def body(suite: Suite) -> None:
        sink = runtime.sink
        selected = list(suite.test_ids()) if ids is None else list(ids)
        for test_id in selected:
            sink.send(Event(test_id=test_id, status=Status.EXISTS))
        sink.flush()
        if not list_only:
            suite.run(selected)

    return body
