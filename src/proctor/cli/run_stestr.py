"""stestr's ``run`` modes in ``proctor run``: ``--pdb ID``, ``--no-discover ID``,
``--isolated`` and ``--abbreviate``, and the rules on combining them.

* ``--pdb ID`` runs one test in the foreground, the way stestr's ``run --pdb``
  does (in-process there, so that ``pdb.set_trace()`` has the terminal): a
  one-shot worker (``python -m proctor.worker --load-list``) with this
  process's stdin and stderr, its output not captured, and its result stream
  on a pipe to us, which shows and stores it. No pool, no protocol: the
  debugger talks to the terminal directly (line editing included).
* ``--no-discover ID`` runs one test without listing or selecting: the id may
  be a unittest id, or a path (``tests/test_a.py::TestA::test_x``), converted
  as stestr converts it for a unittest suite; for a unittest suite whose module
  is a ``test*.py`` file, discovery is confined to that module's directory.
* ``--isolated`` lists the suite once, then runs each selected test on a
  worker process of its own, one after another (as stestr does), all into one
  stored run: the run session does it (:mod:`proctor.runner.session`).
* ``--abbreviate`` prints one character per test
  (:mod:`proctor.cli.abbreviated_view`).
"""

from __future__ import annotations

import dataclasses
import os
import signal
import subprocess
import sys
import tempfile
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, BinaryIO, cast

from proctor.cli.run_args import UsageProblem
from proctor.runner.report import Progress, RunResult
from proctor.wire.event import Status
from proctor.wire.record import TestRecord

if TYPE_CHECKING:
    from proctor.cli.run_args import RunArgs
    from proctor.config import Config

__all__ = [
    "check_stestr_options",
    "narrow_to_one_test",
    "run_pdb",
    "tally",
]


def check_stestr_options(args: RunArgs) -> None:
    """Refuse combinations that cannot work (exit 2), before anything starts."""

    def refuse(message: str) -> None:
        raise UsageProblem(message)

    if args.max_runs is not None and not args.until_failure:
        refuse("--max-runs limits --until-failure; give both")
    if args.combine and not args.store:
        refuse("--combine adds to the last stored run; it cannot be used with --no-store")
    single = [
        name
        for name, given in (
            ("--pdb", args.pdb_test_id is not None),
            ("--no-discover", args.no_discover is not None),
            ("--isolated", args.isolated),
            ("--isolate", args.isolate is not None),
        )
        if given
    ]
    if len(single) > 1:
        refuse(f"{' and '.join(single)} cannot be used together")
    if args.pdb_test_id is not None or args.no_discover is not None:
        other = [
            name
            for name, given in (
                ("--until-failure", args.until_failure and args.pdb_test_id is not None),
                ("--list", args.list_tests),
                ("filters", bool(args.filters)),
                ("a selection option", args.selection.narrows),
            )
            if given
        ]
        if other:
            refuse(f"{single[0]} runs one test; it cannot be used with {other[0]}")
    if args.isolated and args.until_failure:
        refuse("--isolated and --until-failure cannot be used together")


# -- one named test ------------------------------------------------------------------


def named_test(spec: str, framework: str) -> str:
    """The id of the test ``spec`` names (``--pdb``, ``--no-discover``).

    For pytest, ``spec`` is a node id and stays as it is. For unittest, a path
    is turned into a dotted id as stestr turns it (``tests/test_a.py::A::t``
    -> ``tests.test_a.A.t``); a dotted id stays as it is.
    """
    if framework == "pytest":
        return spec
    path, _, rest = spec.partition("::")
    if path.endswith(".py") or os.sep in path or "/" in path:
        path = os.path.splitext(os.path.normpath(path))[0].replace(os.sep, ".").replace("/", ".")
    return ".".join(part for part in (path, rest.replace("::", ".")) if part)


def _framework(config: Config) -> str:
    from proctor.runner.worker.framework import detect_framework

    return detect_framework(config.framework, config.root, config.test_path)


def _module_dir(test_id: str, config: Config) -> str | None:
    """The directory of the ``test*.py`` module of a unittest id, relative to the
    root, when it can be found (discovery can then be confined to it)."""
    top = config.root / (config.top_dir or ".")
    parts = test_id.split(".")
    for end in range(len(parts) - 1, 0, -1):
        module = top.joinpath(*parts[:end]).with_suffix(".py")
        if module.is_file():
            if not module.name.startswith("test"):
                return None
            return os.path.relpath(module.parent, config.root)
    return None


def narrow_to_one_test(args: RunArgs, config: Config) -> tuple[RunArgs, Config, tuple[str, ...]]:
    """``--no-discover``: the arguments and configuration that run only that test."""
    assert args.no_discover is not None
    framework = _framework(config)
    test_id = named_test(args.no_discover, framework)
    if framework == "pytest":
        changes = {"framework": "pytest", "pytest_args": (*config.pytest_args, test_id)}
        return args, dataclasses.replace(config, **changes), (test_id,)  # type: ignore[arg-type]
    where = _module_dir(test_id, config)
    if where is not None:
        args = dataclasses.replace(args, framework="unittest", test_path=where)
        config = dataclasses.replace(config, framework="unittest", test_path=where)
    return args, config, (test_id,)


def tally(result: RunResult, record: TestRecord) -> None:
    """Count ``record`` into ``result`` (as the controller counts its records)."""
    status = record.status
    if status > Status.INPROGRESS:
        result.counts[status] += 1
        if status.is_failure:
            result.failures.append(record)
    elif status is not Status.EXISTS:
        result.unfinished.append(record)


def run_pdb(args: RunArgs, config: Config) -> int:
    """``--pdb ID``: the test alone, in the foreground (module docstring)."""
    import time

    from proctor.cli.abbreviated_view import AbbreviatedView
    from proctor.cli.run_setup import event_sinks, open_history, run_storage
    from proctor.cli.run_view import LineView, NoticeView
    from proctor.events.collector import RecordCollector
    from proctor.events.source import read_events

    assert args.pdb_test_id is not None
    framework = _framework(config)
    test_id = named_test(args.pdb_test_id, framework)
    color = args.color if args.color is not None else sys.stdout.isatty()
    view = (
        NoticeView(sys.stderr)
        if args.subunit
        else AbbreviatedView(sys.stdout, color=color)
        if args.abbreviate
        else LineView(sys.stdout, color=color)
    )
    store, _ = open_history(args, config)
    storing = run_storage(store, args, config) if store is not None and args.store else None
    if storing is not None:
        storing.set_notice(view.notice)
    sinks = event_sinks(args, sys.stdout.buffer)
    result = RunResult(selected=[test_id], discovered=[test_id])
    view.planned(Progress(total=1, workers=1))
    started = time.monotonic()

    def on_record(record: TestRecord) -> None:
        tally(result, record)
        if storing is not None:
            storing.add(record)
            storing.commit()  # shown means stored
        view.record(record)

    collector = RecordCollector(on_record)
    interrupted = False
    with tempfile.TemporaryDirectory(prefix="proctor-pdb-") as scratch:
        load_list = Path(scratch) / "ids"
        load_list.write_text(test_id + "\n", encoding="utf-8")
        argv = _oneshot_argv(config, framework, load_list, test_id)

        def ignore(signum: int, frame: FrameType | None) -> None:
            nonlocal interrupted
            interrupted = True  # the test (in our process group) gets it; we keep reading

        previous = signal.signal(signal.SIGINT, ignore)
        try:
            process = subprocess.Popen(argv, stdout=subprocess.PIPE, cwd=config.root)
            assert process.stdout is not None
            try:
                for batch in read_events(cast(BinaryIO, process.stdout), "v2"):
                    for event in batch:
                        sinks.sink.send(event)
                        collector.send(event)
            finally:
                process.stdout.close()
                code = process.wait()
        finally:
            signal.signal(signal.SIGINT, previous)
            collector.close()
            sinks.close()
            if storing is not None:
                storing.finish(interrupted=interrupted or not result.ran)
            if store is not None:
                from proctor.cli.repository import close_store

                close_store(store)
    result.wall_time = time.monotonic() - started
    result.interrupted = interrupted or code == 130
    if not result.ran and not result.interrupted:
        result.error = f"the test did not run (the worker exited with status {code})"
    view.finished(result)
    return result.exit_code


def _oneshot_argv(config: Config, framework: str, load_list: Path, test_id: str) -> list[str]:
    argv = [sys.executable, "-m", "proctor.worker", f"--root={config.root}"]
    argv += [f"--framework={framework}", "--no-capture", f"--load-list={load_list}"]
    if config.top_dir:
        argv.append(f"--top-dir={config.top_dir}")
    if framework == "pytest":
        return [*argv, "--", *config.pytest_args, test_id.partition("::")[0]]
    if config.test_path:
        argv.append(f"--test-path={config.test_path}")
    return argv
