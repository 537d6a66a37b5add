"""The exit statuses of ``proctor`` commands: pinned, since scripts and CI read them."""

from __future__ import annotations

import signal

from proctor.exitcode import ExitCode, signal_exit
from proctor.runner.protocol import WorkerExit


def test_the_exit_codes_are_pinned() -> None:
    assert {code.name: int(code) for code in ExitCode} == {
        "OK": 0,
        "FAILED": 1,
        "ERROR": 2,
        "RUN_ERROR": 3,
        "NO_TESTS": 5,
        "INTERRUPTED": 130,
        "BROKEN_PIPE": 141,
    }


def test_a_signal_exits_with_128_plus_its_number_as_a_shell_reports_it() -> None:
    assert signal_exit(signal.SIGINT) == ExitCode.INTERRUPTED
    assert signal_exit(signal.SIGTERM) == 143
    assert signal_exit(signal.SIGPIPE) == ExitCode.BROKEN_PIPE


def test_the_table_in_the_docstring_names_every_code() -> None:
    import proctor.exitcode

    doc = proctor.exitcode.__doc__ or ""
    for code in ExitCode:
        assert f"{int(code):<6}``{code.name}``" in doc


def test_the_workers_own_statuses_stay_apart() -> None:
    # A worker talks to its controller, not to a shell: its codes are its own.
    assert {code.name: int(code) for code in WorkerExit} == {
        "OK": 0,
        "USAGE": 2,
        "CONTROLLER_GONE": 3,
        "STOPPED": 4,
        "INTERRUPTED": 130,
    }
