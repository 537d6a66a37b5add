"""``proctor run --cluster`` across hosts: network namespaces on this machine.

Three "hosts": this one (the controller and the Dask scheduler), and two
network namespaces, ``b`` and ``c``, each with one Dask worker process, its own
address on its own link to this host, and its own host name (a UTS namespace).
The project checkout is the same directory for all (one file system), as it
would be on hosts that share a checkout; what travels between them goes over
real TCP on the veth links, so cutting a link is a real network partition: no
FIN, no RST, the packets just stop.

Needs root and ``ip netns`` (iproute2); skipped, saying so, where either is missing.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from proctor.wire.v2 import decode
from tests.runner.projects import UNITTEST_CONF, outcomes, worker_env, write_project

distributed = pytest.importorskip("distributed")

pytestmark = pytest.mark.slow


@dataclass(frozen=True)
class Hosts:
    scheduler: str
    """The Dask scheduler's address, on this host."""
    links: dict[str, str]
    """Host name -> the name of this host's end of its link."""


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, timeout=30)


def _netns_available() -> str | None:
    """Why network namespaces cannot be made here, or None."""
    if os.geteuid() != 0:
        return "network namespaces need root"
    if shutil.which("ip") is None or shutil.which("unshare") is None:
        return "needs iproute2's ip and util-linux's unshare"
    probe = f"ptprobe{os.getpid()}"
    try:
        _ip("netns", "add", probe)
    except (subprocess.CalledProcessError, OSError) as error:
        return f"cannot make a network namespace: {error}"
    _ip("netns", "del", probe)
    return None


def _free_port(host: str) -> int:
    with socket.socket() as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.kill()
    process.wait(timeout=30)


@pytest.fixture(scope="module")
def hosts() -> Iterator[Hosts]:
    why = _netns_available()
    if why is not None:
        pytest.skip(why)
    tag = f"pt{os.getpid() % 100000}"
    net = 100 + os.getpid() % 100  # 10.NET.{1,2}.0/24: one run's links, unlike another's
    names = {"host-b": (f"{tag}b", 1), "host-c": (f"{tag}c", 2)}
    links: dict[str, str] = {}
    processes: list[subprocess.Popen[bytes]] = []
    env = worker_env()
    try:
        for host, (netns, subnet) in names.items():
            here, there = f"10.{net}.{subnet}.1", f"10.{net}.{subnet}.2"
            link = f"{netns}v"
            _ip("netns", "add", netns)
            _ip("link", "add", link, "type", "veth", "peer", "name", "eth0", "netns", netns)
            links[host] = link
            _ip("addr", "add", f"{here}/24", "dev", link)
            _ip("link", "set", link, "up")
            _ip("-n", netns, "addr", "add", f"{there}/24", "dev", "eth0")
            _ip("-n", netns, "link", "set", "eth0", "up")
            _ip("-n", netns, "link", "set", "lo", "up")
            _ip("-n", netns, "route", "add", "default", "via", here)
        address = f"10.{net}.1.1"
        port = _free_port(address)
        scheduler = f"tcp://{address}:{port}"
        processes.append(
            subprocess.Popen(
                [
                    *(sys.executable, "-m", "distributed.cli.dask_scheduler"),
                    *("--host", address, "--port", str(port), "--no-dashboard"),
                ],
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        )
        for host, (netns, subnet) in names.items():
            worker = [sys.executable, "-m", "distributed.cli.dask_worker", scheduler]
            worker += ["--host", f"10.{net}.{subnet}.2", "--nworkers", "1", "--nthreads", "1"]
            worker += ["--no-dashboard", "--name", host]
            processes.append(
                subprocess.Popen(
                    [
                        *("ip", "netns", "exec", netns, "unshare", "--uts", "sh", "-c"),
                        f'hostname {host} && exec "$0" "$@"',
                        *worker,
                    ],
                    env=env,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            )
        with distributed.Client(scheduler, timeout=60) as client:
            client.wait_for_workers(2, timeout=90)
        yield Hosts(scheduler, links)
    finally:
        for process in reversed(processes):
            _stop(process)
        for netns, _ in names.values():
            left = subprocess.run(
                ["ip", "netns", "pids", netns], capture_output=True, text=True, check=False
            )
            for pid in left.stdout.split():
                with contextlib.suppress(ProcessLookupError, ValueError):
                    os.kill(int(pid), 9)
            subprocess.run(["ip", "netns", "del", netns], capture_output=True, check=False)


def _run(root: Path, *args: str, timeout: float = 240) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "proctor", "run", "--subunit", "--no-store", *args],
        cwd=root,
        capture_output=True,
        timeout=timeout,
        env=worker_env(),
        check=False,
    )


def test_a_run_across_two_hosts_gives_the_same_outcomes_as_a_local_one(
    tmp_path: Path, hosts: Hosts
) -> None:
    fine = "".join(f"    def test_{n:02d}(self): time.sleep(0.02)\n" for n in range(40))
    root = write_project(
        tmp_path,
        {
            **UNITTEST_CONF,
            "tests/test_a.py": "import time, unittest\n\nclass Fine(unittest.TestCase):\n"
            + fine
            + "\nclass Bad(unittest.TestCase):\n"
            + "    def test_fails(self): self.assertEqual(1, 2)\n",
        },
    )
    remote = _run(root, "--cluster", hosts.scheduler)
    local = _run(root, "-j", "2")
    assert remote.returncode == local.returncode == 1, remote.stderr.decode()
    events = list(decode(remote.stdout))
    assert outcomes(events) == outcomes(decode(local.stdout))
    # Route codes name the host each test ran on: both hosts took tests.
    hosts_seen = {e.route_code.split(":")[0] for e in events if e.route_code and e.test_id}
    assert hosts_seen == {"host-b", "host-c"}, hosts_seen


def test_a_partitioned_host_fails_its_test_with_the_cause_and_the_rest_run_elsewhere(
    tmp_path: Path, hosts: Hosts
) -> None:
    """The link to host c is cut while one of its tests runs: no FIN ever comes. The
    controller notices (keepalive), fails that test saying why, gives the rest of
    that host's work to host b, and ends: nothing waits forever, nothing is lost
    or reported twice."""
    marker = tmp_path / "cut-me"
    hang = "import socket, time, unittest\n\nclass Hang(unittest.TestCase):\n" + "".join(
        f"    def test_{n:02d}(self):\n"
        f"        if socket.gethostname() == 'host-c':\n"
        f"            open({str(marker)!r}, 'w').close()\n"
        "            time.sleep(600)\n"
        for n in range(20)
    )
    root = write_project(tmp_path / "project", {**UNITTEST_CONF, "tests/test_hang.py": hang})
    process = subprocess.Popen(
        [
            *(sys.executable, "-m", "proctor", "run", "--subunit", "--no-store"),
            *("--cluster", hosts.scheduler),
        ],
        cwd=root,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=worker_env(),
    )
    try:
        deadline = time.monotonic() + 120
        while not marker.exists():
            assert process.poll() is None, process.communicate()[1].decode()
            assert time.monotonic() < deadline, "no test ever ran on host c"
            time.sleep(0.1)
        cut = time.monotonic()
        _ip("link", "set", hosts.links["host-c"], "down")
        out, err = process.communicate(timeout=180)
        took = time.monotonic() - cut
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
        _ip("link", "set", hosts.links["host-c"], "up")
    assert process.returncode == 1, err.decode()
    events = list(decode(out))
    results = outcomes(events)
    assert len(results) == 20
    failed = [test for test, status in results.items() if status == "fail"]
    assert len(failed) == 1, results  # the one that hung on host c
    assert all(status == "success" for test, status in results.items() if test not in failed)
    finals = [e.test_id for e in events if e.test_id and e.status.is_final]
    assert len(finals) == len(set(finals)) == 20  # none lost, none twice
    said = b"".join(e.file_bytes or b"" for e in events if e.test_id == failed[0])
    assert b"lost the connection" in said, said
    assert b"host-c" in said, said
    print(f"partition noticed and the run ended {took:.1f} s after the cut")
