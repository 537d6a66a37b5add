"""Text from tests, made safe to show on a terminal.

Test ids, what tests print, tracebacks, skip reasons, tags, even a run's
metadata loaded from someone else's stream: all of it is untrusted. Written to
a terminal as it is, a test can clear the screen (``ESC [2J``), move the cursor
back over its own traceback, overwrite a ``FAILED`` with ``\\r``, retitle the
window (OSC), or reverse the text after it (U+202E). :func:`printable` is the
one place where such text is neutralised for display; every path from a test
to the terminal goes through it. The stored attachments keep the raw bytes
(``proctor export`` gives them back unchanged); JSON output escapes instead.

* Complete escape sequences (CSI such as colours and cursor moves, OSC such as
  window titles and hyperlinks, DCS/APC/PM/SOS strings, two-character ``ESC x``
  commands, in their 7-bit and 8-bit forms) are removed: they style or command
  the terminal and carry no text of the test's.
* Every other control character except newline and tab is shown as a visible
  escape, as Python writes it (``\\x1b``, ``\\r``, ``\\x9b``), and so are the
  Unicode bidirectional controls (``\\u202e``) and line/paragraph separators.
  A ``\\r\\n`` line ending is a newline. An escape sequence cut short (by the
  end of the text, or of one read of a live stream) is shown escaped, never
  passed on, so text split anywhere is safe piece by piece.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TextIO

__all__ = ["ids_for", "printable", "printable_id"]

# What may start a sequence or must be escaped: C0 but \t \n, DEL, C1, bidi controls,
# line and paragraph separators.
_UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069]")

_SEQUENCE = re.compile(
    # CSI: ESC [ or 0x9b, parameter bytes, intermediate bytes, a final byte.
    "(?:\x1b\\[|\x9b)[\x30-\x3f]*[\x20-\x2f]*[\x40-\x7e]"
    # OSC, DCS, SOS, PM, APC: a string ended by BEL or ST (ESC \ or 0x9c).
    "|(?:\x1b[\\]PX^_]|[\x9d\x90\x98\x9e\x9f])[^\x07\x1b\x9c]*(?:\x07|\x1b\\\\|\x9c)"
    # Other escape sequences: ESC, intermediate bytes, a final byte (not one that
    # opens the sequences above: cut short, those are shown, not guessed at).
    "|\x1b[\x20-\x2f]*(?![\\[\\]PX^_])[\x30-\x7e]"
)

_UNSAFE_IN_LINE = re.compile(_UNSAFE.pattern.replace("\x00-\x08\x0b-\x1f", "\x00-\x1f"))

_ESCAPES = {"\r": "\\r", "\n": "\\n", "\t": "\\t"}


def _escape(match: re.Match[str]) -> str:
    char = match.group()
    known = _ESCAPES.get(char)
    if known is not None:
        return known
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def _strip_sequences(text: str) -> str:
    if "\x1b" in text or any(c in text for c in "\x90\x98\x9b\x9c\x9d\x9e\x9f"):
        return _SEQUENCE.sub("", text)
    return text


def printable(text: str) -> str:
    """``text`` with escape sequences removed and other controls made visible
    (see the module docstring); newlines and tabs are kept."""
    if _UNSAFE.search(text) is None:  # nearly always: one scan, no copy
        return text
    text = _strip_sequences(text).replace("\r\n", "\n")
    return _UNSAFE.sub(_escape, text)


def printable_id(text: str) -> str:
    """A test id (or another one-line name) for display: as :func:`printable`,
    with newlines and tabs escaped too, so that it stays on its line."""
    if _UNSAFE_IN_LINE.search(text) is None:
        return text
    return _UNSAFE_IN_LINE.sub(_escape, _strip_sequences(text))


def ids_for(out: TextIO) -> Callable[[str], str]:
    """How to write ids one per line to ``out`` for a script to read (``failing
    --list``, ``run --list``, ``stream ls``): as they are when ``out`` is a file or a
    pipe, so that they can be fed back; through :func:`printable_id` on a
    terminal (as ``ls`` shows file names)."""
    isatty = getattr(out, "isatty", None)
    try:
        terminal = bool(isatty()) if isatty is not None else False
    except (OSError, ValueError):
        terminal = False
    return printable_id if terminal else _as_is


def _as_is(text: str) -> str:
    return text
