"""The worker's command line.

::

    python -m proctor.worker [--root DIR] [--framework auto|unittest|pytest]
        [-t TOP_DIR] [--list] [--load-list FILE] [--no-capture] [--pdb]
        [--serve --commands-fd N --results-fd M] [--capture-dir DIR]
        [discover] [TEST_PATH] [-- PYTEST_ARGS...]

The positional shape (``discover -t TOP TEST_PATH``, ``--list``,
``--load-list FILE``) is the one of ``python -m subunit.run`` and
``python -m stestr.subunit_runner.run``, so tools that drive those (a
testrepository ``test_command``, a script) can drive this worker by changing
the module name. Anything after ``--`` is passed to pytest.

Options the command line leaves out come from the project's configuration
(``[tool.proctor]``, ``.stestr.conf``; see :mod:`proctor.config`).

argparse rather than click, and paths kept as strings (no pathlib): the worker
starts once per core on every run, and its start-up is paid before the first
test.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["UsageError", "WorkerOptions", "parse_args"]


class UsageError(ValueError):
    """A command line the worker cannot run with (the message says why)."""


@dataclass(frozen=True, slots=True)
class WorkerOptions:
    """Everything the command line said (``None``: take it from the project configuration)."""

    root: str | None = None
    framework: str | None = None
    test_path: str | None = None
    top_dir: str | None = None
    pytest_args: tuple[str, ...] = ()
    list_only: bool = False
    load_list: str | None = None
    capture: bool = True
    post_mortem: bool = False
    serve: bool = False
    commands_fd: int | None = None
    results_fd: int | None = None
    capture_dir: str | None = None
    only: tuple[str, ...] = ()
    """Collect (import) only these test files (a watch cycle's); empty: all."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(message)


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="python -m proctor.worker",
        description="Proctor's test worker: imports a suite once and runs tests, writing "
        "subunit v2 (one-shot to stdout, or as a server speaking the worker protocol).",
    )
    parser.add_argument("--root", help="project root (default: found from the cwd)")
    parser.add_argument("--framework", choices=("auto", "unittest", "pytest"))
    parser.add_argument("-t", "--top-dir", help="unittest top-level directory")
    parser.add_argument("--test-path", dest="test_path_option", help="unittest start directory")
    parser.add_argument("-l", "--list", action="store_true", help="list the tests (exists events)")
    parser.add_argument("--load-list", help="run only the ids in this file, in its order")
    parser.add_argument(
        "--no-capture",
        "-s",
        dest="capture",
        action="store_false",
        help="let tests' output through live instead of attaching it to each test",
    )
    parser.add_argument(
        "--pdb",
        dest="post_mortem",
        action="store_true",
        help="the debugger at each failure or error (post-mortem; input comes through stdin)",
    )
    parser.add_argument("--serve", action="store_true", help="server mode (see the protocol)")
    parser.add_argument("--commands-fd", type=int, help="server mode: fd to read commands from")
    parser.add_argument("--results-fd", type=int, help="server mode: fd to write results to")
    parser.add_argument("--capture-dir", help="where the output capture files live")
    parser.add_argument(
        "--only",
        action="append",
        default=[],
        metavar="FILE",
        help="collect only this test file (repeatable; default: every test file)",
    )
    parser.add_argument("positional", nargs="*", help="[discover] [TEST_PATH]")
    return parser


def parse_args(argv: Sequence[str]) -> WorkerOptions:
    """Parse the worker's arguments (without the program name); raise :class:`UsageError`."""
    argv = list(argv)
    pytest_args: list[str] = []
    if "--" in argv:
        cut = argv.index("--")
        argv, pytest_args = argv[:cut], argv[cut + 1 :]
    args = _parser().parse_intermixed_args(argv)
    positional: list[str] = list(args.positional)
    if positional and positional[0] == "discover":
        positional.pop(0)
    if len(positional) > 1:
        raise UsageError(f"expected at most one test path, got {' '.join(positional)}")
    test_path = args.test_path_option or (positional[0] if positional else None)
    if args.serve:
        if args.commands_fd is None or args.results_fd is None:
            raise UsageError("--serve needs --commands-fd and --results-fd")
        if args.list or args.load_list:
            raise UsageError("--list and --load-list are one-shot options; a server takes commands")
    elif args.commands_fd is not None or args.results_fd is not None:
        raise UsageError("--commands-fd and --results-fd only make sense with --serve")
    return WorkerOptions(
        root=args.root,
        framework=args.framework,
        test_path=test_path,
        top_dir=args.top_dir,
        pytest_args=tuple(pytest_args),
        list_only=args.list,
        load_list=args.load_list,
        capture=args.capture,
        post_mortem=args.post_mortem,
        serve=args.serve,
        commands_fd=args.commands_fd,
        results_fd=args.results_fd,
        capture_dir=args.capture_dir,
        only=tuple(args.only),
    )
