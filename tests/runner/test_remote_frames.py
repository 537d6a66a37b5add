"""The framing of a remote worker's channels, and its command line (proctor.runner.remote)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from proctor.runner.dask_backend import remote_argv
from proctor.runner.remote import CAPTURE, COMMANDS, RESULTS, decode_frames, encode_frame
from proctor.runner.subprocess_backend import WorkerSpec

_frames = st.lists(st.tuples(st.sampled_from([b"C", b"R", b"O", b"X", b"K"]), st.binary()))


@given(_frames, st.lists(st.integers(0, 200)))
def test_frames_come_out_whole_and_in_order_however_the_bytes_are_cut(
    frames: list[tuple[bytes, bytes]], cuts: list[int]
) -> None:
    stream = b"".join(encode_frame(kind, payload) for kind, payload in frames)
    buffer = bytearray()
    got: list[tuple[bytes, bytes]] = []
    position = 0
    for cut in [*cuts, len(stream)]:
        end = min(len(stream), position + cut) if cut else len(stream)
        buffer.extend(stream[position:end])
        position = end
        got.extend(decode_frames(buffer))
    buffer.extend(stream[position:])
    got.extend(decode_frames(buffer))
    assert got == frames
    assert buffer == bytearray()


def test_the_remote_command_line_has_placeholders_only_where_the_channels_go() -> None:
    spec = WorkerSpec(
        root=Path("/p"), framework="pytest", pytest_args=("-k", "{x} and --capture-dir=@")
    )
    argv = remote_argv(spec)
    assert argv[:3] == ["-m", "proctor.worker", "--serve"]
    assert argv.count(COMMANDS) == argv.count(RESULTS) == argv.count(CAPTURE) == 1
    assert argv[-2:] == ["-k", "{x} and --capture-dir=@"]  # a pytest argument is left alone
    assert CAPTURE not in remote_argv(WorkerSpec(root=Path("/p"), capture=False))


def test_a_server_with_another_environment_is_refused_saying_which() -> None:
    from proctor.runner.dask_backend import DaskBackend
    from proctor.runner.remote import Identity

    backend = DaskBackend.__new__(DaskBackend)  # only the admission rule, no cluster
    backend.identity = Identity("abc", "env1", "cpython 3.11.9", 120)
    same = {"revision": "abc", "environment": "env1"}
    assert backend._mismatch(same, "h1", 3) is None
    other_env = {**same, "environment": "env2", "python": "cpython 3.12.1", "packages": 99}
    problem = backend._mismatch(other_env, "h1", 3)
    assert problem is not None
    assert "worker 3 on h1 refuses to start: its environment differs" in problem
    assert "cpython 3.12.1" in problem
    assert "env2" in problem
    assert "env1" in problem
    problem = backend._mismatch({**same, "revision": "def"}, "h1", 3)
    assert problem is not None
    assert "different code revision (def; the controller's is abc)" in problem


@pytest.mark.slow  # real git processes
def test_the_identity_changes_with_uncommitted_changes(tmp_path: Path) -> None:
    import subprocess

    from proctor.runner.remote import identity

    def git(*args: str) -> None:
        subprocess.run(["git", "-C", str(tmp_path), *args], check=True, capture_output=True)

    git("init", "-q")
    (tmp_path / "a.py").write_text("x = 1\n")
    git("add", "a.py")
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "one")
    clean = identity(str(tmp_path))
    assert "+dirty" not in clean.revision
    (tmp_path / "a.py").write_text("x = 2\n")
    dirty = identity(str(tmp_path))
    assert dirty.revision.startswith(clean.revision + "+dirty:")
    assert dirty.environment == clean.environment


def test_the_environment_is_read_once_until_a_distribution_on_sys_path_changes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from proctor.runner import remote

    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path / "run"))
    (tmp_path / "run").mkdir()
    packages = tmp_path / "site"
    packages.mkdir()
    monkeypatch.setattr("sys.path", [str(packages)])
    monkeypatch.setattr(remote, "_environment", None)
    real = remote._compute_environment
    reads: list[int] = []

    def counted() -> tuple[str, str, int]:
        reads.append(1)
        return real()

    monkeypatch.setattr(remote, "_compute_environment", counted)
    first = remote.environment()
    assert remote.environment() == first
    assert len(reads) == 1
    monkeypatch.setattr(remote, "_environment", None)  # a new process: the file is read
    assert remote.environment() == first
    assert len(reads) == 1
    (packages / "notes.txt").write_text("not a distribution")
    assert remote.environment() == first
    assert len(reads) == 1
    info = packages / "newpkg-1.0.dist-info"  # an installation
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: newpkg\nVersion: 1.0\n")
    assert remote.environment() != first  # one more distribution
    assert len(reads) == 2
    # A process with other paths (a Dask worker's) keeps its own, so neither makes the
    # other read everything again.
    other = tmp_path / "other"
    other.mkdir()
    monkeypatch.setattr("sys.path", [str(other)])
    remote.environment()
    monkeypatch.setattr("sys.path", [str(packages)])
    monkeypatch.setattr(remote, "_environment", None)
    remote.environment()
    assert len(reads) == 3  # (only the other paths' were read)
    # One file per interpreter, keeping the newest few (Dask workers' paths are all
    # different: each has a scratch directory of its own).
    for index in range(remote.ENVIRONMENTS_KEPT + 2):
        more = tmp_path / f"more{index}"
        more.mkdir()
        monkeypatch.setattr("sys.path", [str(more)])
        remote.environment()
    kept = [name for name in os.listdir(tmp_path / "run/proctor") if name.startswith("environ")]
    assert len(kept) == 1
    with open(tmp_path / "run/proctor" / kept[0]) as file:
        assert len(json.load(file)) == remote.ENVIRONMENTS_KEPT
