"""``sys.stdin`` for tests: input comes from the controller, on request.

A test that reads its standard input (``input()``, ``pdb.set_trace()``,
``breakpoint()``) reads from a :class:`StdinProxy`. When its buffer is empty
the proxy calls the worker's *request* function, which makes the test's output
live (so the user sees the debugger's prompt), tells the controller with a
``stdin`` control event naming the test, and blocks until a ``Stdin`` command
brings bytes. An empty ``Stdin`` is end of input: reads return ``""`` for the
rest of that test (``input()`` raises ``EOFError``, pdb quits), and the next
test that reads asks again.

Only while the worker obeys a ``run`` command does a read ask
(:attr:`StdinProxy.asking`). A read while the suite loads (a module or a
conftest that calls ``input()`` at import time, pytest's collection), between
commands, or while the worker tears down after ``quit`` gets end of input at
once: no test is there to take the input, and the controller, which may be
waiting for the worker's ``ready`` or its exit, would never answer.

The proxy has no file descriptor on purpose: ``input()`` then uses
``sys.stdin.readline()`` instead of the C library's terminal line editing on
fd 0, which in a server worker is ``/dev/null``.
"""

from __future__ import annotations

import codecs
import io
from collections.abc import Callable

__all__ = ["StdinProxy"]

Request = Callable[[str | None], bytes]
"""Asks for input for a test (its id, if known); returns bytes, ``b""`` at end of input."""


class StdinProxy(io.TextIOBase):
    """A text stream whose data is fetched by a request function when needed."""

    def __init__(self, request: Request, *, encoding: str = "utf-8") -> None:
        super().__init__()
        self._request = request
        self._encoding = encoding
        self._decoder = codecs.getincrementaldecoder(encoding)("replace")
        self._text = ""
        self._eof_for: tuple[str | None] | None = None
        self.current_test: Callable[[], str | None] = lambda: None
        """Who is reading: set by the suite, used to name the test in the request."""
        self.asking = True
        """Whether a read may ask for input; when false, reads get end of input at once."""

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return self._encoding

    @property
    def errors(self) -> str:  # type: ignore[override]
        return "replace"

    def readable(self) -> bool:
        return True

    def isatty(self) -> bool:
        return False

    def fileno(self) -> int:
        raise io.UnsupportedOperation("the worker's stdin comes from the controller, not an fd")

    def feed(self, data: bytes) -> None:
        """Add bytes that arrived without being asked for."""
        self._text += self._decoder.decode(data)

    def _fill(self) -> bool:
        """Fetch more input; False at end of input (for the current test)."""
        if not self.asking:
            return False
        test_id = self.current_test()
        if self._eof_for is not None and self._eof_for[0] == test_id:
            return False
        data = self._request(test_id)
        if not data:
            self._text += self._decoder.decode(b"", final=True)
            self._eof_for = (test_id,)
            return False
        self._eof_for = None
        self._text += self._decoder.decode(data)
        return True

    def readline(self, size: int | None = -1, /) -> str:  # type: ignore[override]
        limit = -1 if size is None else size
        while "\n" not in self._text and (limit < 0 or len(self._text) < limit):
            if not self._fill():
                break
        end = self._text.find("\n") + 1 or len(self._text)
        if 0 <= limit < end:
            end = limit
        line, self._text = self._text[:end], self._text[end:]
        return line

    def read(self, size: int | None = -1, /) -> str:
        limit = -1 if size is None else size
        if limit < 0:
            while self._fill():
                pass
            data, self._text = self._text, ""
            return data
        while len(self._text) < limit and self._fill():
            pass
        data, self._text = self._text[:limit], self._text[limit:]
        return data

    def __next__(self) -> str:  # type: ignore[override]
        line = self.readline()
        if not line:
            raise StopIteration
        return line
