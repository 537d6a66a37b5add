"""stestr's ``run`` options and rules in ``proctor run``, in-process with fake workers.

Bad regexes in list files, ``--random`` on a small suite, ``--until-failure
--max-runs``, ``--combine``, ``--abbreviate``, ``--isolated`` and
``--no-discover``. The same options with real workers (and ``--pdb ID`` with a
real debugger) are in ``test_run_stestr_processes.py``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from proctor.cli import run as run_module
from proctor.cli.main import main
from proctor.runner.fake import FakeBackend, FakeTest

SUITE = [
    FakeTest("pkg.test_a.A.test_ok"),
    FakeTest("pkg.test_a.A.test_also_ok"),
    FakeTest("pkg.test_b.B.test_bad", outcome="fail"),
    FakeTest("pkg.test_b.B.test_skip", outcome="skip"),
]


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "pyproject.toml").write_text("[tool.proctor]\nconcurrency = 2\n")
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture
def fake_suite(monkeypatch: pytest.MonkeyPatch) -> Callable[[list[FakeTest]], list[FakeBackend]]:
    """Make ``proctor run`` use fake workers running ``tests``; returns the backends made."""

    def install(tests: list[FakeTest]) -> list[FakeBackend]:
        made: list[FakeBackend] = []

        def make_backend(args: object, config: object) -> FakeBackend:
            backend = FakeBackend(list(tests))
            made.append(backend)
            return backend

        monkeypatch.setattr(run_module, "make_backend", make_backend)
        return made

    return install


@pytest.mark.parametrize("option", ["--include-list", "--exclude-list"])
def test_a_bad_regex_in_a_list_file_is_exit_2_before_any_worker(
    project: Path,
    fake_suite: Callable[[list[FakeTest]], list[FakeBackend]],
    capsys: pytest.CaptureFixture[str],
    option: str,
) -> None:
    backends = fake_suite(SUITE)
    (project / "list.txt").write_text("test_ok\npkg.test_b.B.test_[bad\n")
    assert main(["run", option, "list.txt"]) == 2
    err = capsys.readouterr().err
    expected = "list.txt:2:19: 'pkg.test_b.B.test_[bad' is not a regex: unterminated character set"
    assert expected in err
    assert "Traceback" not in err
    assert backends == []
    assert not (project / ".proctor").exists()
