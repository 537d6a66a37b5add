"""``proctor run --cluster tcp://HOST:8786`` (or a Dask scheduler file).

The backend is :mod:`proctor.runner.dask_backend`; this module holds the option
and the choice of backend and worker count, so that ``cli/run.py`` only calls in,
and reads ``PROCTOR_CLUSTER_AGENT`` (how long the warm Dask agent,
:mod:`proctor.runner.dask_agent`, outlives the last run that used it; 0: none).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar

import click

from proctor.exitcode import ExitCode

if TYPE_CHECKING:
    from proctor.runner.backend import WorkerBackend
    from proctor.runner.subprocess_backend import WorkerSpec

__all__ = [
    "AGENT_IDLE",
    "ClusterUnavailable",
    "agent_idle",
    "cluster_backend",
    "cluster_option",
    "cluster_slots",
]

_F = TypeVar("_F", bound=Callable[..., object])


class ClusterUnavailable(click.ClickException):
    """The cluster cannot be used; exit status 3 (the run could not complete)."""

    exit_code = ExitCode.RUN_ERROR


def cluster_option(function: _F) -> _F:
    option = click.option(
        "--cluster",
        metavar="ADDRESS|FILE",
        envvar="PROCTOR_CLUSTER",
        help="Run the workers on a Dask cluster (scheduler address or scheduler file).",
    )
    return option(function)


def cluster_backend(spec: WorkerSpec, cluster: str) -> WorkerBackend:
    import os

    from proctor.runner.dask_backend import ClusterError, DaskBackend

    if ":" not in cluster and not os.path.isfile(cluster):
        from proctor.cli.run_args import UsageProblem

        raise UsageProblem(
            f"--cluster {cluster}: no such scheduler file, and not an address "
            "(tcp://HOST:8786, tls://HOST:8786 or HOST:8786)"
        )

    try:
        return DaskBackend(spec, cluster, agent_idle=agent_idle())
    except ClusterError as error:
        raise ClusterUnavailable(str(error)) from None


AGENT_IDLE = 900.0
"""Seconds the warm Dask agent waits for another run before it exits (by default)."""


def agent_idle() -> float:
    """How long the warm agent (:mod:`proctor.runner.dask_agent`) outlives the last
    run that used it: ``PROCTOR_CLUSTER_AGENT`` seconds (0: no agent, each run
    connects to the cluster itself), 900 by default."""
    import os

    from proctor.cli.run_args import UsageProblem

    given = os.environ.get("PROCTOR_CLUSTER_AGENT", "").strip()
    if not given:
        return AGENT_IDLE
    try:
        seconds = float(given)
    except ValueError:
        seconds = -1.0
    if not seconds >= 0:  # (NaN too)
        raise UsageProblem(
            f"PROCTOR_CLUSTER_AGENT={given}: seconds the Dask agent waits for the next "
            "run (0: no agent)"
        )
    return seconds


def cluster_slots(backend: WorkerBackend) -> int | None:
    """Test servers a cluster backend has room for (one per Dask worker thread)."""
    slots = getattr(backend, "slots", None)
    return int(slots()) if callable(slots) else None
