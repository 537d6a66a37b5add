"""Text from tests never commands the terminal: ids, output, tracebacks, reasons.

A test printed ``ESC [2J`` and cleared the screen, moved the cursor over its own
traceback, overwrote ``FAILED`` with ``\\r`` and retitled the terminal through
OSC. Every view (``run``'s live and plain views, ``last``, ``failing``,
``history``, ``slowest``, ``runs``, ``stream trace`` / ``ls`` / ``stats``) shows
such text neutralised, while the repository keeps the raw bytes.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from proctor.cli.printable import printable, printable_id
from proctor.wire import v2
from proctor.wire.event import Event, Status

from .history_streams import T0
from .invoke import invoke

# Everything a terminal acts on: C0 controls but newline and tab, DEL, C1, and the
# Unicode bidirectional controls.
DANGEROUS = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069]")

HOSTILE_OUTPUT = (
    "before\n"
    "\x1b[2J\x1b[H"  # clear the screen, cursor home
    "\x1b]0;pwned title\x07"  # OSC: retitle the terminal
    "\x1b]8;;http://evil.example/\x1b\\click me\x1b]8;;\x1b\\\n"  # OSC 8 hyperlink
    "\x1b[3A\x1b[2K"  # three lines up, erase the line
    "ok\rFAILED overwritten\n"
    "\x9b2J"  # C1 CSI
    "\u202eevil reversed\n"
    "\x1b[12"  # a sequence cut short
)
HOSTILE_ID = "pkg.test_mod.T.test_\x1b]0;id title\x07\x1b[31mred\x1b[0m\r\u202eevil"


def assert_safe(text: str) -> None:
    found = DANGEROUS.findall(text)
    assert not found, f"control characters reached the terminal: {found!r}"


# -- the neutraliser --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        ("plain text, é ó 日本\n\tindented", "plain text, é ó 日本\n\tindented"),
        ("a\x1b[2Jb", "ab"),
        ("\x1b[1;31mred\x1b[0m", "red"),
        ("x\x1b]0;TITLE\x07y", "xy"),
        ("x\x1b]0;TITLE\x1b\\y", "xy"),
        ("\x1b]8;;http://e/\x1b\\link\x1b]8;;\x1b\\", "link"),
        ("a\x1bP1;2qdata\x1b\\b", "ab"),
        ("\x1b7saved\x1b8", "saved"),
        ("ok\rFAILED", "ok\\rFAILED"),
        ("windows\r\nline", "windows\nline"),
        ("\x9b2J", ""),
        ("\x9dtitle\x9c", ""),
        ("C1 \x85 next line", "C1 \\x85 next line"),
        ("abc\u202edef", "abc\\u202edef"),
        ("bell\x07 null\x00 del\x7f", "bell\\x07 null\\x00 del\\x7f"),
        # Cut short (end of the text, or of one read of a live stream): shown, not passed on.
        ("x\x1b]0;TITLE", "x\\x1b]0;TITLE"),
        ("x\x1b[12", "x\\x1b[12"),
        ("x\x1b", "x\\x1b"),
    ],
)
def test_printable_removes_sequences_and_shows_other_controls(raw: str, shown: str) -> None:
    assert printable(raw) == shown


def test_printable_id_keeps_an_id_on_one_line() -> None:
    assert printable_id("a\nb\tc\r\nd") == "a\\nb\\tc\\r\\nd"
    assert printable_id("pkg.T.test_x[1-2]") == "pkg.T.test_x[1-2]"


@given(st.text(alphabet=st.characters(codec="utf-8"), max_size=200))
def test_nothing_a_terminal_acts_on_survives(text: str) -> None:
    assert_safe(printable(text))
    assert_safe(printable_id(text))
    assert "\n" not in printable_id(text)


@given(st.lists(st.text(max_size=40), max_size=6))
def test_text_split_anywhere_is_safe_piece_by_piece(pieces: list[str]) -> None:
    assert_safe("".join(printable(piece) for piece in pieces))


# -- the history commands and stream trace ----------------------------------------------


def _hostile_stream() -> bytes:
    tags = frozenset({"worker-0"})
    text = HOSTILE_OUTPUT.encode()
    events = [
        Event(HOSTILE_ID, Status.INPROGRESS, tags, timestamp=T0),
        Event(HOSTILE_ID, file_name="stdout", file_bytes=text, eof=True, mime_type="text/plain"),
        Event(
            HOSTILE_ID,
            file_name="traceback",
            file_bytes=b"Traceback (most recent call last):\n" + text,
            eof=True,
            mime_type='text/x-traceback; charset="utf8"',
        ),
        Event(HOSTILE_ID, Status.FAIL, tags, timestamp=T0 + 10**9),
        Event("pkg.test_mod.T.test_skip", Status.INPROGRESS, tags, timestamp=T0 + 10**9),
        Event(
            "pkg.test_mod.T.test_skip",
            file_name="reason",
            file_bytes=b"\x1b]0;skip title\x07because\r",
            eof=True,
            mime_type="text/plain",
        ),
        Event("pkg.test_mod.T.test_skip", Status.SKIP, tags, timestamp=T0 + 2 * 10**9),
        Event("pkg.test_mod.T.test_ok", Status.INPROGRESS, tags | {"\x1b[2Jtag"}, timestamp=T0),
        Event("pkg.test_mod.T.test_ok", Status.SUCCESS, tags | {"\x1b[2Jtag"}, timestamp=T0 + 1),
    ]
    # Output outside any test, as a suite prints while importing.
    return b"import-time \x1b[2J\x1b]0;t\x07noise\n" + v2.encode_many(events)


@pytest.fixture
def hostile_repo(tmp_path: Path) -> str:
    repo = str(tmp_path / ".proctor")
    loaded = invoke("load", "--repository", repo, stdin=_hostile_stream())
    assert loaded.exit_code == 1, loaded.stderr
    return repo


@pytest.mark.parametrize(
    "command",
    [
        ["last"],
        ["last", "--color"],
        ["failing"],
        ["slowest"],
        ["runs"],
        ["runs", "show", "last"],
        ["history", HOSTILE_ID],
        ["history", "pkg.test_mod.T"],  # unknown: suggests the hostile id
    ],
)
def test_the_history_commands_show_hostile_text_neutralised(
    hostile_repo: str, command: list[str]
) -> None:
    result = invoke(*command, "--repository", hostile_repo)
    assert result.exit_code in (0, 1, 2), result.stderr
    assert "\x1b[31mred" not in result.stdout  # the test's own colour is gone
    assert_safe(click_unstyle(result.stdout) if "--color" in command else result.stdout)
    assert_safe(result.stderr)
    if command[0] in ("last", "failing"):
        assert "FAILED" in result.stdout
        assert "before\n" in result.stdout  # the test's output is shown, only defused
        assert "ok\\rFAILED overwritten" in result.stdout
        assert "\\u202eevil" in result.stdout


def test_the_repository_keeps_the_raw_bytes(hostile_repo: str) -> None:
    exported = invoke("export", "--repository", hostile_repo)
    events = v2.decode(exported.stdout_bytes)
    files = {(e.test_id, e.file_name): e.file_bytes for e in events if e.file_name}
    assert files[(HOSTILE_ID, "stdout")] == HOSTILE_OUTPUT.encode()
    assert files[("pkg.test_mod.T.test_skip", "reason")] == b"\x1b]0;skip title\x07because\r"
    ids = invoke("failing", "--list", "--repository", hostile_repo)
    assert ids.stdout == HOSTILE_ID + "\n"  # to a pipe or a file, ids are as they are


@pytest.mark.parametrize(
    "command", [["stream", "trace"], ["stream", "trace", "--color"], ["stream", "stats"]]
)
def test_stream_commands_show_hostile_text_neutralised(command: list[str]) -> None:
    result = invoke(*command, stdin=_hostile_stream())
    assert result.exit_code == 1
    assert "\x1b[31mred" not in result.stdout
    assert_safe(click_unstyle(result.stdout) if "--color" in command else result.stdout)
    if command[1] == "trace":
        assert "import-time noise" in result.stdout
        assert "ok\\rFAILED overwritten" in result.stdout


def test_ids_are_neutralised_only_for_a_terminal() -> None:
    from proctor.cli.printable import ids_for

    class Terminal:
        def isatty(self) -> bool:
            return True

    class Pipe:
        def isatty(self) -> bool:
            return False

    assert ids_for(Terminal())(HOSTILE_ID) == printable_id(HOSTILE_ID)  # type: ignore[arg-type]
    assert ids_for(Pipe())(HOSTILE_ID) == HOSTILE_ID  # type: ignore[arg-type]


# -- proctor run, with real workers -----------------------------------------------------

HOSTILE_PROJECT = {
    ".stestr.conf": "[DEFAULT]\ntest_path=./tests\ntop_dir=./\n",
    "tests/__init__.py": "",
    "tests/test_hostile.py": """
import sys, unittest

print("import-time \\x1b[2J\\x1b]0;import title\\x07done")

class Hostile(unittest.TestCase):
    def test_prints_and_fails(self):
        sys.stdout.write("\\x1b[2J\\x1b[H\\x1b]0;pwned\\x07ok\\rFAILED\\x1b[3A\\u202eevil\\n")
        sys.stdout.flush()
        self.fail("\\x1b[1A\\x1b[2Kmessage \\x9b2J\\u202ehidden")

    def test_passes(self):
        print("\\x1b]0;quiet title\\x07")
""",
}


def _write(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text.lstrip("\n"), encoding="utf-8")
    return root


@pytest.mark.slow
def test_run_shows_what_a_hostile_test_printed_neutralised(tmp_path: Path) -> None:
    root = _write(tmp_path, HOSTILE_PROJECT)
    done = subprocess.run(
        [sys.executable, "-m", "proctor", "run", "-j", "1"],
        cwd=root,
        capture_output=True,
        timeout=120,
        check=False,
    )
    out = done.stdout.decode("utf-8")
    assert done.returncode == 1, done.stderr
    assert "tests.test_hostile.Hostile.test_prints_and_fails" in out
    assert "ok\\rFAILED" in out
    assert "message \\u202ehidden" in out
    assert_safe(out)
    assert_safe(done.stderr.decode("utf-8"))
    for command in (["last"], ["failing"], ["history", "tests.test_hostile.Hostile.test_passes"]):
        shown = subprocess.run(
            [sys.executable, "-m", "proctor", *command],
            cwd=root,
            capture_output=True,
            timeout=60,
            check=False,
        )
        assert_safe(shown.stdout.decode("utf-8"))
    exported = subprocess.run(
        [sys.executable, "-m", "proctor", "export"],
        cwd=root,
        capture_output=True,
        timeout=60,
        check=True,
    ).stdout
    stdout = b"".join(
        e.file_bytes
        for e in v2.decode(exported)
        if e.file_name == "stdout"
        and e.test_id == "tests.test_hostile.Hostile.test_prints_and_fails"
    )
    assert stdout == "\x1b[2J\x1b[H\x1b]0;pwned\x07ok\rFAILED\x1b[3A\u202eevil\n".encode()


def test_the_live_view_neutralises_what_it_draws() -> None:
    import io

    from proctor.cli.run_view import LiveView
    from proctor.runner.report import Progress, RunResult
    from proctor.wire.record import Attachment, TestRecord

    out = io.StringIO()
    view = LiveView(out, color=True)
    progress = Progress(total=2, workers=1)
    view.planned(progress)
    progress.running = {0: (HOSTILE_ID, 0.0)}  # running for a long while
    assert_safe(click_unstyle(view.status_text(10**9)))
    view.output(0, HOSTILE_OUTPUT.encode())
    view.notice(f"worker 0 died running {HOSTILE_ID}")
    failed = TestRecord(
        HOSTILE_ID,
        Status.FAIL,
        attachments=(Attachment("traceback", HOSTILE_OUTPUT.encode(), "text/plain"),),
    )
    view.record(failed)
    result = RunResult(failures=[failed], missing=[HOSTILE_ID], error=HOSTILE_OUTPUT)
    view.finished(result)
    assert_safe(click_unstyle(out.getvalue().replace("\r\x1b[2K", "")))


def click_unstyle(text: str) -> str:
    """The text without the view's own styling (colours, the status line's redraw)."""
    return re.sub("\x1b\\[[0-9;]*m", "", text)
