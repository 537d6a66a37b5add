"""Place ``proctor run --cluster``'s test servers before the rest of Proctor is imported.

A local run starts its first worker first thing (:mod:`proctor.cli.run_early`),
so that it imports the suite while the controller imports itself. A cluster run
does the same through the warm agent (:mod:`proctor.runner.dask_agent`), when
one is already up: :func:`start_early` greets it, opens the listener the
servers connect back to, makes the run's token, and submits one server per
worker thread of the cluster (``-j N``: N; ``--serial``: one), configured by the
project itself (no ``--root``: the server reads the configuration of the
project around the working directory, as the controller will). The Dask backend
adopts all of it (:func:`take_early`) when it would have placed the same
servers; otherwise, and at exit, :func:`discard_early` closes it (the agent
then cancels the tasks, and a server whose connection closes ends its worker).

No agent up (the first run, or ``PROCTOR_CLUSTER_AGENT=0``): nothing happens
here, and the backend does it all later.
"""

from __future__ import annotations

import os
import socket
import sys
import threading

from proctor.runner.dask_agent import AgentError, AgentLauncher, agent_socket, connect
from proctor.runner.runtime_dir import runtime_dir

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

    from proctor.runner.remote import Identity

__all__ = ["EarlyCluster", "discard_early", "reachable_from", "start_early", "take_early"]


class EarlyCluster:
    """What :func:`start_early` set up, for the backend to adopt."""

    def __init__(
        self,
        cluster: str,
        launcher: AgentLauncher,
        listener: socket.socket,
        token: str,
        run: str,
        count: int,
        capture: bool,
    ) -> None:
        self.cluster = cluster
        self.launcher = launcher
        self.listener = listener
        self.token = token
        self.run = run
        self.count = count
        self.capture = capture
        self.python = sys.executable
        self.cwd = os.getcwd()
        self.adopted = False
        self.identity: Identity | None = None
        """This side's revision and environment (:func:`~proctor.runner.remote.identity`),
        once :attr:`identity_thread` has found it."""
        self.identity_thread = threading.Thread(
            target=self._find_identity, name="proctor-identity", daemon=True
        )
        self._lock = threading.Lock()
        self._ended: list[tuple[int, object]] = []  # tasks that ended before adoption
        self._sink: Callable[[int, object], None] | None = None

    def _find_identity(self) -> None:
        from proctor.runner.remote import identity

        try:
            self.identity = identity(self.cwd)
        except Exception:  # (the backend asks again, in the open)
            self.identity = None

    def ended(self, worker: int, payload: object) -> None:
        """A task ended (from the agent's reader thread): held until adopted."""
        with self._lock:
            sink = self._sink
            if sink is None:
                self._ended.append((worker, payload))
                return
        sink(worker, payload)

    def adopt(self, sink: Callable[[int, object], None]) -> None:
        """From now on, what ends goes to ``sink`` (and what ended went there first)."""
        with self._lock:
            self._sink = sink
            ended, self._ended = self._ended, []
        for worker, payload in ended:
            sink(worker, payload)


_early: EarlyCluster | None = None


def start_early(cluster: str, *, capture: bool, count: int | None) -> None:
    """Place the servers now if the agent for ``cluster`` is up (see the module
    docstring); ``count``: how many (None: one per worker thread)."""
    global _early
    if _early is not None or not _agent_wanted():
        return
    directory = runtime_dir()
    if directory is None:
        return
    conn = connect(agent_socket(cluster, directory))
    if conn is None:
        return
    try:
        launcher = AgentLauncher.greet(conn)
    except AgentError:
        return
    scheduler = launcher.scheduler
    if scheduler.partition("://")[0] not in ("tcp", "tls"):
        launcher.close()  # (the backend says why not)
        return
    import secrets

    from proctor.runner.remote import CAPTURE, COMMANDS, RESULTS
    from proctor.runner.spawn import worker_argv

    try:
        listener = socket.create_server((reachable_from(scheduler), 0))
    except OSError:
        launcher.close()
        return
    listener.setblocking(False)
    token = secrets.token_urlsafe(32)
    run = secrets.token_hex(4)
    count = max(1, count if count is not None else launcher.slots())
    early = EarlyCluster(cluster, launcher, listener, token, run, count, capture)
    argv = worker_argv(sys.executable, -1, -2, capture=capture, capture_dir="@")[1:]
    marks = {"--commands-fd=-1": COMMANDS, "--results-fd=-2": RESULTS, "--capture-dir=@": CAPTURE}
    argv = [marks.get(part, part) for part in argv]
    address = listener.getsockname()[:2]
    tls = scheduler.startswith("tls://")
    for worker in range(count):
        args = (address, token, worker, early.cwd, argv, None, tls)
        launcher.submit(worker, f"proctor-{run}-worker-{worker}", args, early.ended)
    early.identity_thread.start()  # what the servers must match, found meanwhile
    _early = early
    import atexit

    atexit.register(discard_early)


def take_early(cluster: str, *, root: str, python: str, capture: bool) -> EarlyCluster | None:
    """The servers placed early, if they are the ones a backend for ``cluster``
    would place for the project at ``root`` configured by its configuration alone
    (the caller checks that), with this Python and capture setting: then they
    are the caller's. None otherwise."""
    early = _early
    if early is None or early.adopted:
        return None
    if (cluster, python, capture) != (early.cluster, early.python, early.capture):
        return None
    from pathlib import Path

    from proctor.config import find_root

    if str(find_root(Path(early.cwd))) != root:
        return None
    early.adopted = True
    return early


def discard_early() -> None:
    """Close what was placed early if nobody adopted it (also at exit)."""
    early = _early
    if early is None or early.adopted:
        return
    early.adopted = True
    early.launcher.close()  # the agent cancels the tasks
    early.listener.close()  # and the servers that connect find nobody


def reachable_from(scheduler: str) -> str:
    """This machine's address on the route to the Dask scheduler (its workers are
    assumed to reach us the same way)."""
    from urllib.parse import urlsplit

    parts = urlsplit(scheduler if "://" in scheduler else f"tcp://{scheduler}")
    host = parts.hostname or "127.0.0.1"
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect((host, parts.port or 8786))  # UDP: nothing is sent
            return str(probe.getsockname()[0])
        except OSError:
            return "127.0.0.1"


def _agent_wanted() -> bool:
    """Whether ``PROCTOR_CLUSTER_AGENT`` leaves the agent on (the CLI checks the value)."""
    given = os.environ.get("PROCTOR_CLUSTER_AGENT", "").strip()
    if not given:
        return True
    try:
        return float(given) > 0
    except ValueError:
        return False
