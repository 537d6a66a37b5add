"""A real ``proctor ui`` process on a free loopback port."""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager

BANNER = "Proctor dashboard at http://127.0.0.1:"


@contextmanager
def serve(repository: str, *extra: str) -> Iterator[str]:
    """Start ``proctor ui --port 0``; yield its URL; stop it with Ctrl-C and
    check it ended cleanly (exit 0, no traceback)."""
    process = subprocess.Popen(
        [sys.executable, "-m", "proctor", "ui", "--repository", repository, "--port", "0", *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()  # written once the socket listens
        if not line.startswith(BANNER):
            process.kill()
            _, errors = process.communicate(timeout=10)
            raise AssertionError(f"proctor ui did not start: {line!r} {errors}")
        yield line.split(" at ", 1)[1].split("/ ", 1)[0]
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
        _, errors = process.communicate(timeout=20)
    assert process.returncode == 0, errors
    assert "Traceback" not in errors
