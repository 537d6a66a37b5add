"""What a warm session's set-up read and did outside the process (effects.py).

The audit hook cannot be removed once added: one watch serves every test here,
switched on only around what each test does.
"""

from __future__ import annotations

import os
import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from proctor.runner.worker.effects import EffectWatch, descriptors, outside_state, source_of

WATCH = EffectWatch()


@pytest.fixture
def watch(tmp_path: Path) -> Iterator[EffectWatch]:
    WATCH.allowed = (os.path.join(tmp_path / "own", ""),)
    WATCH.reads.clear()
    WATCH.listed.clear()
    WATCH.effects.clear()
    WATCH.listing = False
    WATCH.on = True
    try:
        yield WATCH
    finally:
        WATCH.on = False


def test_reads_are_recorded_and_a_change_is_seen(watch: EffectWatch, tmp_path: Path) -> None:
    data = tmp_path / "data.txt"
    data.write_text("1")
    watch.effects.clear()  # (the test's own write)
    assert data.read_text() == "1"
    watch.on = False
    assert str(data) in watch.reads
    assert watch.changed() is None
    data.write_text("22")
    assert watch.changed() == f"{data} changed"
    assert not watch.effects


def test_writes_outside_the_process_are_effects_and_caches_are_not(
    watch: EffectWatch, tmp_path: Path
) -> None:
    watch.on = False  # (the test's own set-up)
    cache = tmp_path / "pkg" / "__pycache__"
    cache.mkdir(parents=True)
    (tmp_path / "own").mkdir()
    watch.on = True
    (cache / "mod.cpython-311.pyc").write_bytes(b"")
    (tmp_path / "own" / "x").write_text("")
    with open(os.devnull, "w") as null:
        null.write("")
    with tempfile.TemporaryFile() as anonymous:  # O_TMPFILE: nothing to see outside
        anonymous.write(b"x")
    assert watch.effects == []
    (tmp_path / "written").write_text("")
    os.mkdir(tmp_path / "made")
    watch.on = False
    assert watch.effects == [
        f"open {tmp_path / 'written'} for writing",
        f"os.mkdir {tmp_path / 'made'}",
    ]


def test_listings_are_recorded_only_while_a_fixture_is_set_up(
    watch: EffectWatch, tmp_path: Path
) -> None:
    os.listdir(tmp_path)
    assert not watch.listed
    watch.listing = True
    os.listdir(tmp_path)
    watch.on = False
    assert str(tmp_path) in watch.listed
    (tmp_path / "new").write_text("")
    assert watch.changed() == f"{tmp_path} changed"


def test_a_cached_module_stands_for_its_source() -> None:
    assert source_of("/p/pkg/__pycache__/mod.cpython-311-pytest-9.2.0.pyc") == "/p/pkg/mod.py"
    assert source_of("/p/pkg/mod.py") == "/p/pkg/mod.py"


def test_a_socket_left_open_is_outside_state() -> None:
    before = descriptors()
    left = socket.socket()
    try:
        why = outside_state(before)
        assert why is not None
        assert why.startswith(f"descriptor {left.fileno()} (socket:")
    finally:
        left.close()
    # (pytest's faulthandler_timeout runs a thread in this process: only that is left)
    assert outside_state(before) in (None, "a thread is running")
