"""``proctor run --cluster``: test servers on a real Dask ``LocalCluster`` (worker processes).

The controller runs in-process (``main``) or as a real ``proctor run``; the
cluster's two worker processes (one thread each, with a nanny) start the test
servers through Dask and connect back. Outcomes are read from the ``--subunit``
stream, as a user's tools would.
"""

from __future__ import annotations

import io
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from proctor.cli.main import main
from proctor.runner.remote import Identity
from proctor.wire.v2 import decode
from tests.runner.projects import UNITTEST_CONF, outcomes, worker_env, write_project

distributed = pytest.importorskip("distributed")

pytestmark = pytest.mark.slow

FINE = "".join(f"    def test_{n:02d}(self): pass\n" for n in range(30))
PROJECT = {
    **UNITTEST_CONF,
    "tests/test_a.py": "import os, unittest\n\nclass Fine(unittest.TestCase):\n"
    + FINE
    + "\nclass Bad(unittest.TestCase):\n"
    + "    def test_fails(self): self.assertEqual(1, 2)\n"
    + "    def test_exits(self): print('last words'); os._exit(7)\n",
}


@pytest.fixture(scope="module")
def cluster() -> Iterator[str]:
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0"
    ) as local:
        yield str(local.scheduler_address)


def _subunit(
    root: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "proctor", "run", "--subunit", "--no-store", *args],
        cwd=root,
        capture_output=True,
        timeout=180,
        env=worker_env(env),
        check=False,
    )


def _servers_in(root: Path) -> list[int]:
    """The test servers (``proctor.worker --serve``) working in ``root`` on this machine
    (placed early, a server has no ``--root``: it reads the configuration there)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
            cwd = Path(os.readlink(entry / "cwd"))
        except OSError:
            continue
        if b"proctor.worker" in argv and b"--serve" in argv and cwd == root.resolve():
            found.append(int(entry.name))
    return found


def _agents(runtime: Path) -> list[int]:
    """The warm Dask agents listening in the runtime directory ``runtime``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"proctor.runner.dask_agent" in argv and any(
            arg.startswith(str(runtime).encode()) for arg in argv
        ):
            found.append(int(entry.name))
    return found


def _until(condition: Callable[[], bool], seconds: float = 30.0) -> bool:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


def test_a_run_on_the_cluster_gives_the_same_outcomes_as_a_local_one(
    tmp_path: Path, cluster: str
) -> None:
    root = write_project(tmp_path, PROJECT)
    remote = _subunit(root, "--cluster", cluster)
    local = _subunit(root, "-j", "2")
    assert remote.returncode == local.returncode == 1, remote.stderr.decode()
    events = list(decode(remote.stdout))
    assert outcomes(events) == outcomes(decode(local.stdout))
    assert outcomes(events)["tests.test_a.Bad.test_exits"] == "fail"
    said = b"".join(
        e.file_bytes or b"" for e in events if e.test_id == "tests.test_a.Bad.test_exits"
    )
    assert b"exited with code 7" in said
    assert b"last words" in said  # read back from its capture file
    assert sum(v == "success" for v in outcomes(events).values()) == 30
    # Both Dask workers ran tests (one test server per worker thread).
    routes = {e.route_code.split("/")[0] for e in events if e.route_code and e.test_id}
    assert len(routes) >= 2
    host = socket.gethostname()
    assert all(route.startswith(f"{host}:") for route in routes), routes  # HOST:N


def test_a_test_that_kills_its_dask_worker_fails_with_the_cause_and_nothing_is_lost(
    tmp_path: Path, cluster: str
) -> None:
    files = dict(PROJECT)
    files["tests/test_z.py"] = """
        import os, signal, time, unittest
        class Z(unittest.TestCase):
            def test_kills_the_dask_worker(self):
                time.sleep(0.2)
                os.kill(os.getppid(), signal.SIGKILL)  # the Dask worker process
                time.sleep(30)
    """
    root = write_project(tmp_path, files)
    done = _subunit(root, "--cluster", cluster, "--timeout", "60")
    assert done.returncode == 1, done.stderr.decode()
    events = list(decode(done.stdout))
    results = outcomes(events)
    assert results["tests.test_z.Z.test_kills_the_dask_worker"] == "fail"
    assert sum(v == "success" for v in results.values()) == 30
    finals = [e.test_id for e in events if e.test_id and e.status and e.status.is_final]
    assert len(finals) == len(set(finals)) == 33  # every test once: none lost, none twice
    tracebacks = b"".join(
        e.file_bytes or b""
        for e in events
        if e.test_id == "tests.test_z.Z.test_kills_the_dask_worker"
    )
    assert b"lost the connection to worker" in tracebacks


def test_a_server_whose_revision_differs_is_refused_saying_which(
    tmp_path: Path,
    cluster: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from proctor.runner import dask_backend

    root = write_project(tmp_path, PROJECT)
    monkeypatch.chdir(root)
    real = dask_backend.identity

    def controllers(path: str) -> Identity:  # only the controller's side (this process)
        mine = real(path)
        return Identity("0123abcd", mine.environment, mine.python, mine.packages)

    monkeypatch.setattr(dask_backend, "identity", controllers)
    scheduler_file = tmp_path / "scheduler.json"  # as `dask scheduler --scheduler-file` writes
    scheduler_file.write_text(json.dumps({"type": "Scheduler", "address": cluster}))
    status = main(["run", "--no-store", "--cluster", str(scheduler_file)])
    captured = capsys.readouterr()
    err = captured.out + captured.err
    assert status == 3, err
    assert "refuses to start" in err
    assert "different code revision" in err
    assert "0123abcd" in err


def test_a_connection_without_the_token_gets_nothing(tmp_path: Path, cluster: str) -> None:
    from proctor.runner.dask_backend import DaskBackend
    from proctor.runner.subprocess_backend import WorkerSpec

    backend = DaskBackend(WorkerSpec(root=tmp_path), cluster)
    try:
        with socket.create_connection(backend.address, timeout=10) as conn:
            hello = {"token": "guess", "worker": 0, "revision": "x", "environment": "y"}
            conn.sendall(json.dumps(hello).encode() + b"\n")
            messages = []
            for _ in range(20):  # accept, read the hello, close
                messages.extend(backend.wait(0.05))
            assert messages == []
            assert conn.recv(100) == b""  # closed, unanswered
    finally:
        backend.close()


def test_ctrl_c_stops_every_remote_server(tmp_path: Path, cluster: str) -> None:
    files = {
        **UNITTEST_CONF,
        "tests/test_slow.py": "import time, unittest\nclass S(unittest.TestCase):\n"
        + "".join(f"    def test_{n}(self): time.sleep(0.5)\n" for n in range(40)),
    }
    root = write_project(tmp_path, files)
    process = subprocess.Popen(
        [sys.executable, "-m", "proctor", "run", "--subunit", "--no-store", "--cluster", cluster],
        cwd=root,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=worker_env(),
    )
    assert process.stdout is not None
    time.sleep(4)
    process.send_signal(signal.SIGINT)
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=60)
    assert process.returncode == 130, err.decode()
    pids = {e.route_code for e in decode(io.BytesIO(out).read()) if e.route_code}
    assert pids  # it was running remotely
    # No test server of this project is left on the cluster's machine.
    assert _until(lambda: not _servers_in(root), 10), _servers_in(root)


def _tls(tmp_path: Path) -> tuple[Any, Path, Path]:
    """A Dask ``Security`` for a ``tls://`` cluster (one self-signed certificate made
    with openssl, for every role), and the certificate and key files."""
    import shutil

    from distributed.security import Security

    if shutil.which("openssl") is None:
        pytest.skip("openssl is needed to make a certificate")
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    subprocess.run(
        [
            *("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"),
            *("-subj", "/CN=proctor-test", "-keyout", str(key), "-out", str(cert)),
        ],
        check=True,
        capture_output=True,
    )
    pems = {"cert": str(cert), "key": str(key)}
    security = Security(
        tls_ca_file=str(cert),
        **{
            f"tls_{role}_{part}": path
            for role in ("client", "scheduler", "worker")
            for part, path in pems.items()
        },
        require_encryption=True,
    )
    return security, cert, key


def test_on_a_tls_cluster_the_servers_connect_back_over_tls(tmp_path: Path) -> None:
    """A ``tls://`` LocalCluster: the connections back to the controller are TLS too."""
    from distributed import Client

    from proctor.runner.controller import Controller
    from proctor.runner.dask_backend import DaskBackend
    from proctor.runner.options import RunOptions
    from proctor.runner.subprocess_backend import WorkerSpec

    security, _, _ = _tls(tmp_path)
    root = write_project(tmp_path / "project", PROJECT)
    with (
        distributed.LocalCluster(
            n_workers=1,
            threads_per_worker=2,
            processes=True,
            protocol="tls://",
            security=security,
            dashboard_address=":0",
        ) as local,
        Client(local, security=security) as client,
    ):
        assert str(local.scheduler_address).startswith("tls://")
        backend = DaskBackend(WorkerSpec(root=root), str(local.scheduler_address), client=client)
        accepted = []
        real_wrap = backend._tls.wrap_socket  # type: ignore[union-attr]

        def wrap(sock: socket.socket, **kwargs: object) -> object:
            wrapped = real_wrap(sock, **kwargs)  # type: ignore[arg-type]
            accepted.append(wrapped.version())
            return wrapped

        backend._tls.wrap_socket = wrap  # type: ignore[union-attr,method-assign]
        try:
            result = Controller(backend, RunOptions(concurrency=2)).run()
        finally:
            backend.close()
    assert result.failed == 2  # test_fails and test_exits
    assert len(result.selected) == 32
    assert accepted
    assert all(version is not None and version.startswith("TLS") for version in accepted)


def test_a_cluster_that_is_neither_a_file_nor_an_address_is_a_usage_error(
    tmp_path: Path,
) -> None:
    root = write_project(tmp_path, PROJECT)
    done = _subunit(root, "--cluster", str(tmp_path / "missing.json"))
    assert done.returncode == 2
    assert b"no such scheduler file, and not an address" in done.stderr
    assert b"Traceback" not in done.stderr


def test_a_remote_test_over_its_timeout_fails_with_its_stack_and_its_worker_is_killed(
    tmp_path: Path, cluster: str
) -> None:
    files = {
        **UNITTEST_CONF,
        "tests/test_h.py": "import time, unittest\nclass H(unittest.TestCase):\n"
        "    def test_hangs(self): time.sleep(120)\n"
        "    def test_fine(self): pass\n",
    }
    root = write_project(tmp_path, files)
    started = time.monotonic()
    done = _subunit(root, "--cluster", cluster, "--timeout", "2", "-j", "1")
    assert time.monotonic() - started < 60  # not the test's two minutes
    assert done.returncode == 1, done.stderr.decode()
    events = list(decode(done.stdout))
    assert outcomes(events) == {
        "tests.test_h.H.test_hangs": "fail",
        "tests.test_h.H.test_fine": "success",
    }
    said = b"".join(e.file_bytes or b"" for e in events if e.test_id == "tests.test_h.H.test_hangs")
    assert b"Timed out: still running after 2s" in said
    # The stack dump (SIGUSR1 through the connection), then the kill (the run ended).
    assert b"Stacks of all its threads at that moment:" in said
    assert b"in test_hangs" in said


SERVER_ARGV = {
    **UNITTEST_CONF,
    "tests/test_argv.py": """
        import os, sys, unittest
        class A(unittest.TestCase):
            def test_notes_its_server(self):
                log = os.path.join(os.path.dirname(__file__), os.pardir, "servers.log")
                with open(log, "a") as notes:
                    notes.write(" ".join(sys.argv) + "\\n")
    """,
}


def test_runs_share_one_warm_agent_and_then_place_their_servers_first_thing(
    tmp_path: Path, cluster: str
) -> None:
    runtime = tmp_path / "runtime"
    runtime.mkdir(mode=0o700)
    root = write_project(tmp_path / "project", SERVER_ARGV)
    env = {"XDG_RUNTIME_DIR": str(runtime)}
    for _ in range(3):
        done = _subunit(root, "--cluster", cluster, env=env)
        assert done.returncode == 0, done.stderr.decode()
        assert outcomes(decode(done.stdout)) == {
            "tests.test_argv.A.test_notes_its_server": "success"
        }
    assert len(list((runtime / "proctor").glob("dask-*.sock"))) == 1
    assert len(_agents(runtime)) == 1
    servers = (root / "servers.log").read_text().splitlines()
    # The first run started the agent, then placed servers for the project at its root;
    # the next ones placed theirs before parsing the command line, configured by the
    # project itself (as the first local worker is).
    assert "--root=" in servers[0]
    assert all("--root=" not in line for line in servers[1:]), servers
    # Without the agent, a run connects to the cluster itself.
    done = _subunit(root, "--cluster", cluster, env={**env, "PROCTOR_CLUSTER_AGENT": "0"})
    assert done.returncode == 0, done.stderr.decode()
    assert "--root=" in (root / "servers.log").read_text().splitlines()[-1]
    done = _subunit(root, "--cluster", cluster, env={**env, "PROCTOR_CLUSTER_AGENT": "soon"})
    assert done.returncode == 2
    assert b"PROCTOR_CLUSTER_AGENT=soon" in done.stderr
    assert b"Traceback" not in done.stderr


def test_a_run_outlives_its_agent_and_an_agent_ends_with_its_cluster(tmp_path: Path) -> None:
    runtime = tmp_path / "runtime"
    runtime.mkdir(mode=0o700)
    files = {
        **UNITTEST_CONF,
        "tests/test_slow.py": "import time, unittest\nclass S(unittest.TestCase):\n"
        + "    def setUp(self): open(__file__ + '.ran', 'a').close()\n"
        + "".join(f"    def test_{n}(self): time.sleep(0.2)\n" for n in range(30)),
    }
    root = write_project(tmp_path / "project", files)
    ran = root / "tests" / "test_slow.py.ran"
    env = worker_env({"XDG_RUNTIME_DIR": str(runtime)})
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0"
    ) as local:
        address = str(local.scheduler_address)
        # Three servers on two threads: the third waits in Dask's queue, and is lost
        # with the agent that placed it.
        command = ["run", "--subunit", "--no-store", "--cluster", address, "-j", "3"]
        run = subprocess.Popen(
            [sys.executable, "-m", "proctor", *command],
            cwd=root,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
        )
        assert _until(ran.exists)  # a test has started: the servers are connected
        (agent,) = _agents(runtime)
        os.kill(agent, signal.SIGKILL)  # the servers' connections are the controller's own
        out, err = run.communicate(timeout=120)
        assert run.returncode == 0, err.decode()
        events = list(decode(out))
        assert sum(v == "success" for v in outcomes(events).values()) == 30
        finals = [e.test_id for e in events if e.test_id and e.status and e.status.is_final]
        assert len(finals) == len(set(finals)) == 30  # none lost, none twice
        # The lost one was placed again without the agent (from the run itself).
        assert b"the Dask agent of this run went away" in err, err.decode()
        assert b"in place of" in err, err.decode()
        # The next run finds the dead agent's socket, and starts another, removing what
        # dead agents left (here, one of another cluster's too).
        elsewhere = runtime / "proctor" / "dask-000000000000.sock"
        with socket.socket(socket.AF_UNIX) as dead:
            dead.bind(str(elsewhere))  # (never listened on)
        (elsewhere.parent / f"{elsewhere.name}.log").write_text("its last words")
        done = _subunit(root, "--cluster", address, "tests.test_slow.S.test_1", env=dict(env))
        assert done.returncode == 0, done.stderr.decode()
        (successor,) = _agents(runtime)
        assert successor != agent
        assert not list((runtime / "proctor").glob("dask-000000000000.*"))
    # Its scheduler gone, the agent exits and removes its socket.
    assert _until(lambda: not _agents(runtime))
    assert not list((runtime / "proctor").glob("dask-*.sock"))


def test_a_tls_cluster_from_the_command_line_through_the_agent(tmp_path: Path) -> None:
    """The agent's client reads Dask's TLS configuration (here from DASK_* variables);
    the controller listens with the same client certificate, told by the agent."""
    security, cert, key = _tls(tmp_path)
    runtime = tmp_path / "runtime"
    runtime.mkdir(mode=0o700)
    root = write_project(tmp_path / "project", PROJECT)
    env = {
        "XDG_RUNTIME_DIR": str(runtime),
        "DASK_DISTRIBUTED__COMM__TLS__CA_FILE": str(cert),
        "DASK_DISTRIBUTED__COMM__TLS__CLIENT__CERT": str(cert),
        "DASK_DISTRIBUTED__COMM__TLS__CLIENT__KEY": str(key),
        "DASK_DISTRIBUTED__COMM__REQUIRE_ENCRYPTION": "True",
    }
    with distributed.LocalCluster(
        n_workers=1,
        threads_per_worker=2,
        processes=True,
        protocol="tls://",
        security=security,
        dashboard_address=":0",
    ) as local:
        address = str(local.scheduler_address)
        for _ in range(2):  # the agent's start, then servers placed first thing
            done = _subunit(root, "--cluster", address, env=env)
            assert done.returncode == 1, done.stderr.decode()
            results = outcomes(decode(done.stdout))
            assert sum(v == "success" for v in results.values()) == 30
            assert results["tests.test_a.Bad.test_exits"] == "fail"
        assert len(_agents(runtime)) == 1
