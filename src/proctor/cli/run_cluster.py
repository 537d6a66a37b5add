"""``proctor run --cluster tcp://HOST:8786`` (or a Dask scheduler file).

The backend is :mod:`proctor.runner.dask_backend`; this module holds the option
and the choice of backend and worker count, so that ``cli/run.py`` only calls in.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar

import click

from proctor.exitcode import ExitCode

if TYPE_CHECKING:
    from proctor.runner.backend import WorkerBackend
    from proctor.runner.subprocess_backend import WorkerSpec

__all__ = ["ClusterUnavailable", "cluster_backend", "cluster_option", "cluster_slots"]

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
        return DaskBackend(spec, cluster)
    except ClusterError as error:
        raise ClusterUnavailable(str(error)) from None


def cluster_slots(backend: WorkerBackend) -> int | None:
    """Test servers a cluster backend has room for (one per Dask worker thread)."""
    slots = getattr(backend, "slots", None)
    return int(slots()) if callable(slots) else None
