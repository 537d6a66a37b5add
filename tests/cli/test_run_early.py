"""Which ``proctor run`` command lines may start the first worker before parsing."""

from __future__ import annotations

import pytest

from proctor.cli.run_early import starts_early


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["run"], True),
        (["run", "-j", "2", "--timeout", "3", "test_x", "--subunit", "--no-store"], True),
        (["run", "--seed=4", "--random", "--until-failure", "--failing"], True),
        (["run", "-s"], False),
        # after -- is pytest's: the worker's command line changes
        (["run", "--no-capture", "--", "--framework"], None),
        (["run", "-s", "--"], False),
        (["run", "-x", "--maxfail", "3", "--ff"], True),  # the controller's business
        (["run", "-j", "1", "--queue", "pipeline-7"], True),  # a build's job: the same worker
        (["run", "-k", "slow"], None),
        (["run", "--framework", "unittest"], None),
        (["run", "--test-path=tests"], None),
        (["run", "-t", "tests"], None),
        (["run", "--top-dir", "."], None),
        (["run", "--isolate", "pkg.test"], None),
        (["run", "--random-seed", "4", "--until-failure", "--max-runs=3", "--combine"], True),
        (["run", "--abbreviate", "--isolated"], True),
        (["run", "--pdb", "pkg.test"], None),  # runs a worker of its own, in the foreground
        (["run", "--no-discover", "pkg.test"], None),  # narrows the worker's discovery
        (["run", "--help"], None),
        (["run", "-sj2"], None),  # combined short options: not worth guessing
        (["run", "--bogus"], None),
        (["run", "-j"], None),  # a value missing: click will complain
        (["run", "--serial=yes"], None),
        (["last"], None),
        ([], None),
    ],
)
def test_only_run_with_options_that_leave_the_worker_alone_starts_early(
    argv: list[str], expected: bool | None
) -> None:
    assert starts_early(argv) is expected


@pytest.mark.parametrize(
    ("argv", "env", "expected"),
    [
        (["run", "--cluster", "tcp://h:1", "-j", "2"], None, ("tcp://h:1", ["run", "-j", "2"])),
        (["run", "--cluster=h:1", "x"], None, ("h:1", ["run", "x"])),
        (["run", "x"], "tcp://e:2", ("tcp://e:2", ["run", "x"])),
        (["run", "x"], None, (None, ["run", "x"])),
        # after -- is pytest's, not the cluster
        (["run", "--", "--cluster", "h:1"], None, (None, ["run", "--", "--cluster", "h:1"])),
    ],
)
def test_the_cluster_of_a_command_line_is_its_option_else_the_environment(
    argv: list[str],
    env: str | None,
    expected: tuple[str | None, list[str]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from proctor.cli.run_early import cluster_of

    if env is None:
        monkeypatch.delenv("PROCTOR_CLUSTER", raising=False)
    else:
        monkeypatch.setenv("PROCTOR_CLUSTER", env)
    assert cluster_of(argv) == expected


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["run"], None),
        (["run", "-j", "3"], 3),
        (["run", "--concurrency=4", "x"], 4),
        (["run", "-j", "0"], None),  # one per core here: as many as the cluster has threads
        (["run", "--serial", "-j", "3"], 1),
        (["run", "--", "-j", "3"], None),  # pytest's
    ],
)
def test_the_servers_placed_early_are_as_many_as_the_command_line_asks(
    argv: list[str], expected: int | None
) -> None:
    from proctor.cli.run_early import servers_wanted

    assert servers_wanted(argv) == expected
