"""How the Dask backend places its test servers: through a ``distributed.Client``
in this process, or through the warm agent of :mod:`proctor.runner.dask_agent`.

Both are a :class:`Launcher`: the scheduler's address, the worker threads of
the cluster, the TLS context to listen with on a ``tls://`` cluster, and one
task of :func:`proctor.runner.remote.serve_remote` per server, submitted,
cancelled, and reported when it ends (``done(worker, payload)``, from another
thread; :meth:`Launcher.failure` then says how it ended).
"""

from __future__ import annotations

import contextlib
import os
import ssl
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from proctor.runner.dask_agent import AgentLauncher

__all__ = [
    "ClientLauncher",
    "ClusterError",
    "Launcher",
    "agent_launcher",
]

Done = Callable[[int, object], None]


class ClusterError(Exception):
    """The cluster cannot be used (not reachable, Dask not installed)."""


class Launcher(Protocol):
    @property
    def scheduler(self) -> str:
        """The scheduler's address (``tcp://HOST:PORT``, ``tls://...``)."""
        ...

    def slots(self) -> int:
        """The cluster's worker threads now."""
        ...

    def listen_context(self) -> ssl.SSLContext | None:
        """The server-side TLS context for the connections back (``tls://``), else None."""
        ...

    def submit(self, worker: int, key: str, args: tuple[Any, ...], done: Done) -> None:
        """Submit ``serve_remote(*args)`` under ``key``; ``done(worker, payload)`` when it ends."""
        ...

    def cancel(self, worker: int) -> None:
        """Never run (again) worker ``worker``'s task."""
        ...

    def failure(self, payload: object) -> str | None:
        """How the task reported by ``done(worker, payload)`` failed; None if it returned."""
        ...

    def close(self) -> None: ...


class ClientLauncher:
    """Tasks submitted by a ``distributed.Client`` of this process."""

    def __init__(self, client: Any, *, own: bool) -> None:
        self.client = client
        self._own = own
        self._futures: dict[int, Any] = {}
        self._lock = threading.Lock()
        self._closed = False

    @classmethod
    def connect(cls, cluster: str) -> ClientLauncher:
        """A client of its own for ``cluster`` (an address or a scheduler file)."""
        try:
            import distributed
        except ImportError:
            raise ClusterError(
                "--cluster needs Dask: pip install 'proctor[cluster]' (dask, distributed)"
            ) from None
        Client: Any = distributed.Client
        try:
            if os.path.isfile(cluster):
                client = Client(scheduler_file=cluster, timeout=30)
            else:
                client = Client(cluster, timeout=30)
        except (OSError, TimeoutError, ValueError) as error:
            raise ClusterError(f"cannot reach the Dask cluster {cluster}: {error}") from None
        return cls(client, own=True)

    @property
    def scheduler(self) -> str:
        return str(self.client.scheduler.address)

    def slots(self) -> int:
        threads: dict[str, int] = self.client.nthreads()
        return sum(threads.values())

    def listen_context(self) -> ssl.SSLContext | None:
        context: ssl.SSLContext | None = self.client.security.get_listen_args("client").get(
            "ssl_context"
        )
        return context

    def submit(self, worker: int, key: str, args: tuple[Any, ...], done: Done) -> None:
        from proctor.runner.remote import serve_remote

        def ended(future: Any) -> None:  # (in one of Dask's threads)
            with self._lock:
                if not self._closed:
                    done(worker, future)

        future = self.client.submit(serve_remote, *args, key=key, pure=False, retries=0)
        self._futures[worker] = future
        future.add_done_callback(ended)

    def cancel(self, worker: int) -> None:
        future = self._futures.get(worker)
        if future is not None:
            with contextlib.suppress(Exception):
                future.cancel()

    def failure(self, payload: object) -> str | None:
        future: Any = payload
        try:
            outcome = future.exception(timeout=0)
        except Exception as error:  # cancelled, or the client went away
            outcome = error
        return None if outcome is None else repr(outcome)

    def close(self) -> None:
        """Cancel the tasks that have not ended; no ``done`` is called once this has
        returned."""
        with self._lock:
            self._closed = True
        for worker in list(self._futures):
            self.cancel(worker)
        if self._own:
            with contextlib.suppress(Exception):
                self.client.close()


def agent_launcher(cluster: str, idle: float) -> AgentLauncher | None:
    """A launcher through the agent for ``cluster`` (started if needed, to exit
    after ``idle`` seconds unused); None where no agent can be had (no private
    directory, it would not start, it lost its scheduler), so that the run does
    without. :class:`ClusterError` when the agent cannot reach the cluster."""
    from proctor.runner.dask_agent import AgentError, AgentLauncher, agent_socket, start
    from proctor.runner.runtime_dir import runtime_dir

    directory = runtime_dir()
    if directory is None:
        return None
    path = agent_socket(cluster, directory)
    try:
        return AgentLauncher.greet(start(path, cluster, idle))
    except AgentError as error:
        if error.definite:
            raise ClusterError(str(error)) from None
        return None
