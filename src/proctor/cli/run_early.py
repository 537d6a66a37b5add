"""Start ``proctor run``'s first worker before the command is even parsed.

A worker spends its first ~0.1 s importing and discovering the suite; the
controller spends its own first ~0.05 s importing click, its configuration
and the run module before it could start one. :func:`maybe_start` overlaps
the two: called by the console script before anything else is imported, it
starts worker 0 when the command line is ``run`` with options that cannot
change that worker's command line (the worker reads the project's
configuration itself, as the controller will). The backend adopts it
(:func:`proctor.runner.spawn.take_early`); if nobody does (a usage error,
``--help``), it is killed at exit.

Nothing here imports click or the rest of Proctor: that is the point.
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["cluster_of", "finish", "maybe_start", "servers_wanted", "starts_early"]

_WITH_VALUE = frozenset(
    {
        "-j",
        "--concurrency",
        "--timeout",
        "--seed",
        "--random-seed",
        "--max-runs",
        "-E",
        "--exclude-regex",
        "--load-list",
        "-i",
        "--include-list",
        "-e",
        "--exclude-list",
        "--junit",
        "-g",
        "--group-regex",
        "--max-worker-restarts",
        "--repository",
        "--maxfail",
        "--shard",
        "--queue",
    }
)
"""Options of ``proctor run`` that take a value and do not concern the workers."""
_FLAGS = frozenset(
    {
        "--serial",
        "--random",
        "--failing",
        "--until-failure",
        "--combine",
        "--abbreviate",
        "--isolated",
        "--list",
        "--subunit",
        "--parallel-class",
        "--no-store",
        "--color",
        "--no-color",
        "-s",
        "--no-capture",
        "-x",
        "--exitfirst",
        "--ff",
        "--failed-first",
    }
)
"""Flags of ``proctor run`` that do not concern the workers (``-s`` is passed on)."""


def starts_early(argv: Sequence[str]) -> bool | None:
    """Whether ``proctor ARGV`` may start its first worker now: None if not, else
    whether that worker captures output (False with ``-s``/``--no-capture``).

    Anything not known to leave the worker's command line alone (``--framework``,
    ``--test-path``, ``--top-dir``, ``--isolate``, ``--help``, an unknown or
    combined option) means no.
    """
    if not argv or argv[0] != "run":
        return None
    capture = True
    args = iter(argv[1:])
    for arg in args:
        if arg == "--":  # what follows goes to pytest: the worker's command line changes
            return None if next(args, None) is not None else capture
        if not arg.startswith("-") or arg == "-":
            continue  # a filter
        name, has_value, _ = arg.partition("=")
        if name in _WITH_VALUE:
            if not has_value and next(args, None) is None:
                return None
        elif name in _FLAGS and not has_value:
            if name in ("-s", "--no-capture"):
                capture = False
        else:
            return None
    return capture


def maybe_start(argv: Sequence[str]) -> None:
    """Start worker 0 now if ``proctor ARGV`` will want it (see the module docstring);
    with ``--cluster`` (or ``PROCTOR_CLUSTER``), place the cluster's servers now
    instead, through the warm Dask agent if one is up
    (:mod:`proctor.runner.dask_early`)."""
    cluster, rest = cluster_of(argv)
    capture = starts_early(rest)
    if capture is None:
        return
    import contextlib

    if cluster is not None:
        if not any(arg in ("--list", "--isolated") for arg in rest):  # (one server, or many runs)
            from proctor.runner.dask_early import start_early as place_early

            with contextlib.suppress(OSError):  # the backend will place them, and report what fails
                place_early(cluster, capture=capture, count=servers_wanted(rest))
        return
    from proctor.runner.spawn import start_early

    with contextlib.suppress(OSError):  # the backend will start it, and report what fails
        start_early(capture=capture)


def cluster_of(argv: Sequence[str]) -> tuple[str | None, list[str]]:
    """The cluster ``proctor ARGV`` runs on (``--cluster``, else ``PROCTOR_CLUSTER``;
    None: this machine) and the command line without that option."""
    import os

    rest = list(argv)
    for index, arg in enumerate(rest):
        if arg == "--":
            break
        if arg == "--cluster" and index + 1 < len(rest):
            return rest[index + 1], rest[:index] + rest[index + 2 :]
        if arg.startswith("--cluster="):
            return arg.partition("=")[2], rest[:index] + rest[index + 1 :]
    return os.environ.get("PROCTOR_CLUSTER") or None, rest


def servers_wanted(argv: Sequence[str]) -> int | None:
    """The workers ``proctor ARGV`` asks for (``-j N``, ``--serial``); None: as many
    as the cluster has threads (or as the configuration says: extra servers are
    then left idle until the run ends)."""
    wanted: int | None = None
    args = iter(argv[1:])
    for arg in args:
        if arg == "--":
            break
        name, has_value, value = arg.partition("=")
        if name == "--serial":
            return 1
        if name in ("-j", "--concurrency"):
            value = value if has_value else next(args, "")
            if value.isdigit() and int(value) > 0:
                wanted = int(value)
    return wanted


def finish() -> None:
    """End the early worker if nobody adopted it (also done at exit, unless the
    process leaves by :mod:`proctor.runner.fastexit`, which skips that handler)."""
    import sys

    spawn = sys.modules.get("proctor.runner.spawn")
    if spawn is not None:
        spawn.discard_early()
    early_cluster = sys.modules.get("proctor.runner.dask_early")
    if early_cluster is not None:
        early_cluster.discard_early()
