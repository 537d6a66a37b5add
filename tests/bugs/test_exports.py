"""The public names of ``proctor.bugs``, pinned; the layer imports nothing above it."""

from __future__ import annotations

import subprocess
import sys

import proctor.bugs


def test_every_public_name_resolves_and_the_list_is_sorted() -> None:
    assert sorted(proctor.bugs.__all__) == proctor.bugs.__all__
    for name in proctor.bugs.__all__:
        assert getattr(proctor.bugs, name).__name__ == name


def test_importing_the_layer_pulls_in_no_store_runner_or_cli() -> None:
    code = (
        "import sys, proctor.bugs; "
        "print(sorted(m for m in sys.modules if m.startswith('proctor.') "
        "and m.split('.')[1] in ('store', 'runner', 'cli', 'triage', 'web')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
