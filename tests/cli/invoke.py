"""Run the ``proctor`` command in-process and read what a user would see."""

from __future__ import annotations

import io
import sys
from dataclasses import dataclass

from proctor.cli.main import main


@dataclass
class Result:
    exit_code: int
    stdout_bytes: bytes
    stderr: str

    @property
    def stdout(self) -> str:
        return self.stdout_bytes.decode("utf-8", "replace")


def invoke(*args: str, stdin: bytes = b"") -> Result:
    """``proctor ARGS`` with ``stdin`` as its input; stdout kept as bytes."""
    out, err = io.BytesIO(), io.StringIO()
    fake_in = io.TextIOWrapper(io.BytesIO(stdin), encoding="utf-8")
    fake_out = io.TextIOWrapper(out, encoding="utf-8", write_through=True)
    saved = sys.stdin, sys.stdout, sys.stderr
    sys.stdin, sys.stdout, sys.stderr = fake_in, fake_out, err
    try:
        code = main(list(args))
        fake_out.flush()
    finally:
        sys.stdin, sys.stdout, sys.stderr = saved
    return Result(code, out.getvalue(), err.getvalue())
