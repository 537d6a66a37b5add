"""``proctor ui``: the dashboard, a local web application over the repository.

Thin: the application is :mod:`proctor.web`; this opens the repository for
reading, checks the address, and runs uvicorn until Ctrl-C.
"""

from __future__ import annotations

import contextlib
import socket
import sys
from typing import TYPE_CHECKING

import click

from proctor.cli.repository import RepositoryError, open_repository, repository_option
from proctor.exitcode import ExitCode

if TYPE_CHECKING:
    from proctor.web.triage_pages import TriageSource

__all__ = ["dashboard_triage", "missing_extra", "ui"]

LOOPBACK = ("127.0.0.1", "localhost", "::1")


def missing_extra(command: str) -> RepositoryError | None:
    """An error naming the extra to install when the dashboard's packages are absent."""
    try:
        import jinja2  # noqa: F401
        import starlette  # noqa: F401
    except ImportError as error:
        return RepositoryError(
            f"`proctor {command}` needs {error.name}, which is not installed: "
            "install the dashboard's packages with `pip install 'proctor[ui]'`"
        )
    return None


def dashboard_triage() -> TriageSource:
    """The dashboard's triage as the commands': the project's thresholds
    (``[tool.proctor.triage]``) and its ``proctor-rules.toml`` (without that
    file, the repository's copy of the rules)."""
    from proctor.cli._explain import project_rules
    from proctor.cli.triage import settings_or_fail
    from proctor.web.triage_pages import TriageSource

    return TriageSource(settings_or_fail(), project_rules())


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=8765,
    show_default=True,
    help="Port (0: a free one, shown when the server starts).",
)
@click.option(
    "--allow-host",
    "allow_hosts",
    multiple=True,
    metavar="NAME",
    help="Also answer requests whose Host header names NAME (a name this machine is "
    "reached by). Requests naming any other host are refused.",
)
@repository_option
def ui(host: str, port: int, allow_hosts: tuple[str, ...], repository: str | None) -> int:
    """Serve the dashboard: runs over time, runs, comparisons, tests, failure
    clusters, flaky and broken tests, bugs.

    It listens on 127.0.0.1 unless --host says otherwise, answers only requests
    addressed to this machine, and only reads the repository.
    """
    problem = missing_extra("ui")
    if problem is not None:
        raise problem
    try:
        import uvicorn
    except ImportError:
        raise RepositoryError(
            "`proctor ui` needs uvicorn: install it with `pip install 'proctor[ui]'`"
        ) from None
    from proctor.web.app import LOOPBACK_HOSTS, create_app
    from proctor.web.repository import ReadOnlyRepository

    triage = dashboard_triage()

    allowed = [*LOOPBACK_HOSTS, *allow_hosts]
    if host not in ("0.0.0.0", "::"):
        allowed.append(host)
    if host not in LOOPBACK:
        click.echo(
            f"Warning: listening on {host}: anyone who can reach this address can read "
            "the test history (ids, output, tracebacks).",
            err=True,
        )
    with open_repository(repository, read_only=True) as store:
        app = create_app(ReadOnlyRepository(store), allowed_hosts=allowed, triage=triage)
        listener = _listen(host, port)
        shown = f"[{host}]" if ":" in host else host
        sys.stdout.write(
            f"Proctor dashboard at http://{shown}:{listener.getsockname()[1]}/ (Ctrl-C to stop)\n"
        )
        sys.stdout.flush()
        config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off")
        with listener, contextlib.suppress(KeyboardInterrupt):
            # uvicorn stops on Ctrl-C, then raises it again: stopping is the normal end.
            uvicorn.Server(config).run(sockets=[listener])
    return ExitCode.OK


def _listen(host: str, port: int) -> socket.socket:
    """A listening socket on ``host:port`` (port 0: a free one), or an error
    saying why there cannot be one."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        family, kind, proto, _, address = infos[0]
        listener = socket.socket(family, kind, proto)
    except OSError as error:
        raise RepositoryError(f"cannot listen on {host}: {error.strerror or error}") from None
    try:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(address)
        listener.listen(128)
    except OSError as error:
        listener.close()
        raise RepositoryError(
            f"cannot listen on {host} port {port}: {error.strerror or error}; "
            "choose another --port (0 picks a free one)"
        ) from None
    return listener
