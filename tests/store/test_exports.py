"""The public names of ``proctor.store``, pinned."""

from __future__ import annotations

import subprocess
import sys

import pytest

import proctor.store


def test_every_public_name_resolves() -> None:
    for name in proctor.store.__all__:
        assert getattr(proctor.store, name).__name__ == name
    assert sorted(dir(proctor.store)) == sorted(proctor.store.__all__)
    with pytest.raises(AttributeError):
        _ = proctor.store.Nothing  # type: ignore[attr-defined]


def test_opening_a_sqlite_store_imports_neither_psycopg_nor_the_rest() -> None:
    code = (
        "import sys, tempfile; from proctor.store.opening import open_store; "
        "open_store(tempfile.mkdtemp()).close(); "
        "print(sorted(m for m in ('psycopg', 'subprocess', 'proctor.store.memory', "
        "'proctor.store.metadata') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
