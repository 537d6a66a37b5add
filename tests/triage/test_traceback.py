"""Parsing failure text: each format read into an exception chain, root cause first."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import traceback
from pathlib import Path

import pytest
import testtools
import testtools.content

from proctor.testing.triage_corpus import Sample
from proctor.triage import parse_failure
from proctor.triage.traceback import MAX_TEXT


def _raise_chained(explicit: bool) -> str:
    def inner() -> None:
        {}["missing"]

    try:
        try:
            inner()
        except KeyError as error:
            if explicit:
                raise ValueError("wrapped") from error
            raise ValueError("while handling")  # noqa: B904
    except ValueError as error:
        return "".join(traceback.format_exception(type(error), error, error.__traceback__))
    raise AssertionError("not reached")


def test_cpython_traceback_frames_source_and_exception() -> None:
    try:
        int("x1")
    except ValueError as error:
        text = "".join(traceback.format_exception(type(error), error, error.__traceback__))
    parsed = parse_failure(text)
    assert parsed.format == "cpython"
    [report] = parsed.chain
    assert report.type == "ValueError"
    assert report.message == "invalid literal for int() with base 10: 'x1'"
    [frame] = report.frames
    assert frame.path == __file__
    assert frame.function == "test_cpython_traceback_frames_source_and_exception"
    assert frame.source == 'int("x1")'
    assert frame.line is not None


@pytest.mark.parametrize("explicit", [True, False], ids=["cause", "context"])
def test_chained_exceptions_are_read_root_cause_first(explicit: bool) -> None:
    parsed = parse_failure(_raise_chained(explicit))
    assert [r.type for r in parsed.chain] == ["KeyError", "ValueError"]
    root, last = parsed.chain
    assert [f.function for f in root.frames][-1] == "inner"
    assert root.frames[-1].source == '{}["missing"]'
    assert last.message == ("wrapped" if explicit else "while handling")


def test_an_exception_printed_without_a_traceback_starts_the_chain() -> None:
    cause = ValueError("never raised")
    try:
        raise KeyError("k") from cause
    except KeyError as error:
        text = "".join(traceback.format_exception(type(error), error, error.__traceback__))
    assert text.startswith("ValueError: never raised")
    parsed = parse_failure(text)
    assert [(r.type, len(r.frames)) for r in parsed.chain] == [("ValueError", 0), ("KeyError", 1)]


def test_recursion_repeats_and_carets_are_not_frames_or_sources() -> None:
    def deep(n: int) -> int:
        return deep(n + 1) + 1

    try:
        deep(0)
    except RecursionError as error:
        text = "".join(traceback.format_exception(type(error), error, error.__traceback__))
    assert "more times]" in text
    [report] = parse_failure(text).chain
    assert report.type == "RecursionError"
    assert {f.source for f in report.frames[1:]} == {"return deep(n + 1) + 1"}


@pytest.mark.skipif(sys.version_info < (3, 11), reason="exception groups are Python 3.11+")
def test_an_exception_group_keeps_its_traceback_and_its_members_types() -> None:
    try:
        raise ExceptionGroup(  # noqa: F821 (Python 3.11+)
            "several", [ValueError(1), TypeError(2)]
        )
    except Exception as error:
        text = "".join(traceback.format_exception(type(error), error, error.__traceback__))
    [report] = parse_failure(text).chain
    assert report.type == "ExceptionGroup[TypeError,ValueError]"
    assert report.frames[-1].function.startswith("test_an_exception_group")


def test_testtools_traceback_with_a_mismatch_error() -> None:
    class Case(testtools.TestCase):
        def test_mismatch(self) -> None:
            self.assertEqual(3, 4)  # noqa: PT009

    result = testtools.TestResult()
    Case("test_mismatch").run(result)
    [(_, text)] = result.failures
    [report] = parse_failure(text).chain
    assert report.type == "testtools.matchers._impl.MismatchError"
    assert report.message == "3 != 4"
    assert report.frames[0].function == "test_mismatch"
    assert report.frames[0].source == "self.assertEqual(3, 4)  # noqa: PT009"


# Captured from pytest 9.2 (--tb=long, then --tb=short), Python 3.11; {SP} is a space
# pytest leaves at the end of a line.
PYTEST_LONG = """\
    def test_c(tmp_path):
>       config.load(tmp_path / "x.json")

tests/test_x.py:14:{SP}
_ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _{SP}

path = PosixPath('/tmp/pytest-of-root/pytest-64/test_c0/x.json')

    def load(path):
        try:
>           with open(path) as f:
                 ^^^^^^^^^^
E           FileNotFoundError: [Errno 2] No such file or directory: '{TMP}/x.json'

app/config.py:11: FileNotFoundError

The above exception was the direct cause of the following exception:

tmp_path = PosixPath('/tmp/pytest-of-root/pytest-64/test_c0')

    def test_c(tmp_path):
>       config.load(tmp_path / "x.json")

tests/test_x.py:14:{SP}
_ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _{SP}

path = PosixPath('/tmp/pytest-of-root/pytest-64/test_c0/x.json')

    def load(path):
        try:
            with open(path) as f:
                return json.load(f)
        except FileNotFoundError as e:
>           raise ConfigError(f"cannot load {{path}}") from e
E           app.config.ConfigError: cannot load /tmp/pytest-of-root/pytest-64/test_c0/x.json

app/config.py:14: ConfigError
""".format(SP=" ", TMP="/tmp/pytest-of-root/pytest-64/test_c0")

PYTEST_SHORT = """\
tests/test_x.py:8: in test_a
    helper(1)
tests/test_x.py:5: in helper
    assert x == 2
E   assert 1 == 2
"""


def test_pytest_long_format_with_a_chain() -> None:
    parsed = parse_failure(PYTEST_LONG)
    assert parsed.format == "pytest"
    root, last = parsed.chain
    assert root.type == "FileNotFoundError"
    assert [(f.path, f.function, f.line) for f in root.frames] == [
        ("tests/test_x.py", "test_c", 14),
        ("app/config.py", "load", 11),
    ]
    assert root.frames[-1].source == "with open(path) as f:"
    assert last.type == "app.config.ConfigError"
    assert last.frames[-1].source == 'raise ConfigError(f"cannot load {path}") from e'


def test_pytest_short_format_and_a_rewritten_assertion() -> None:
    [report] = parse_failure(PYTEST_SHORT).chain
    assert report.type == "AssertionError"
    assert report.message == "assert 1 == 2"
    assert [(f.function, f.source) for f in report.frames] == [
        ("test_a", "helper(1)"),
        ("helper", "assert x == 2"),
    ]


JAVA = """\
org.opentest4j.AssertionFailedError: expected: <1> but was: <2>
\tat org.junit.jupiter.api.AssertionUtils.fail(AssertionUtils.java:55)
\tat com.example.shop.CartTest.addsItems(CartTest.java:31)
\tat java.base/jdk.internal.reflect.DirectMethodHandleAccessor.invoke(\
DirectMethodHandleAccessor.java:103)
Caused by: java.io.IOException: disk full
\tat com.example.shop.Store.save(Store.java:12)
\tat com.example.shop.Cart.add(Cart.java:40)
\t... 3 more
"""


def test_java_stack_trace_causes_come_first() -> None:
    parsed = parse_failure(JAVA)
    assert parsed.format == "java"
    root, last = parsed.chain
    assert root.type == "java.io.IOException"
    assert [(f.path, f.function) for f in root.frames] == [
        ("com.example.shop.Cart", "add"),
        ("com.example.shop.Store", "save"),
    ]
    assert last.type == "org.opentest4j.AssertionFailedError"
    assert last.frames[-1].function == "fail"


def test_javascript_stack_trace() -> None:
    text = textwrap.dedent("""\
        TypeError: Cannot read properties of undefined (reading 'id')
            at lookup (/home/ci/shop/src/cart.js:12:15)
            at Context.<anonymous> (/home/ci/shop/test/cart.test.js:30:5)
            at process.processImmediate (node:internal/timers:478:21)
        """)
    parsed = parse_failure(text)
    assert parsed.format == "javascript"
    [report] = parsed.chain
    assert report.type == "TypeError"
    assert report.frames[-1].function == "lookup"
    assert report.frames[0].path == "node:internal/timers"


@pytest.mark.parametrize(
    "text", ["", "\n\n", "worker exited", "E", ">", "Traceback (most recent call last):"]
)
def test_text_that_is_not_a_traceback_is_read_as_text(text: str) -> None:
    parsed = parse_failure(text)
    assert parsed.chain
    assert parsed.format == "text"


@pytest.mark.slow
def test_a_real_native_crash_reads_as_faulthandler_frames(tmp_path: Path) -> None:
    module = tmp_path / "crasher.py"
    module.write_text(
        "import ctypes\nimport faulthandler\n\n\ndef crash():\n    ctypes.string_at(0)\n\n\n"
        "faulthandler.enable()\ncrash()\n"
    )
    done = subprocess.run(
        [sys.executable, str(module)], capture_output=True, text=True, check=False
    )
    assert done.returncode != 0
    parsed = parse_failure(done.stderr)
    assert parsed.format == "faulthandler"
    [report] = parsed.chain
    assert report.message.startswith("Fatal Python error: Segmentation fault")
    assert [f.function for f in report.frames if f.path == str(module)] == ["<module>", "crash"]


@pytest.mark.slow
def test_every_corpus_failure_parses_into_frames_with_a_type(corpus: list[Sample]) -> None:
    for sample in corpus:
        parsed = parse_failure(sample.text)
        assert parsed.format in ("cpython", "pytest"), sample
        assert all(r.type for r in parsed.chain), sample
        assert parsed.chain[-1].frames, sample


@pytest.mark.parametrize(
    "text",
    [
        "\tat " + "a." * 50_000,
        "  at " + "a " * 50_000,
        "x" + ":1" * 50_000,
        "a" * 100_000 + " b",
        "Traceback (most recent call last):\n" + '  File "x.py", line 1, in f\n' * 60_000,
        "tests/a.py:1: in f\n    x\n" * 40_000 + "E   " + "e" * 2_000_000,
    ],
    ids=["java", "javascript", "colons", "long-word", "many-frames", "huge"],
)
def test_hostile_text_is_parsed_in_bounded_time(text: str) -> None:
    # No timing assertion: a quadratic pattern makes this test hang, not fail.
    parsed = parse_failure(text)
    assert parsed.chain
    assert len(parsed.text) <= MAX_TEXT + 1


def test_a_comprehension_frame_is_anonymous_in_every_format() -> None:
    # pytest --tb=long shows no def for a generator expression's frame.
    long = textwrap.dedent("""\
        .0 = <list_iterator object at 0x7f26f6df9ba0>

        >   return sum(prices[item] for item in items)
                       ^^^^^^^^^^^^
        E   KeyError: 'a'

        shop/cart.py:2: KeyError
        """)
    native = textwrap.dedent("""\
        Traceback (most recent call last):
          File "/src/shop/cart.py", line 2, in <genexpr>
            return sum(prices[item] for item in items)
        KeyError: 'a'
        """)
    [from_long] = parse_failure(long).chain
    [from_native] = parse_failure(native).chain
    assert from_long.frames[-1].function == from_native.frames[-1].function == "<anonymous>"


def test_pytest_locations_on_a_windows_drive_e() -> None:
    text = "E:\\shop\\tests\\test_a.py:3: in test_a\n    assert f()\nE   assert False\n"
    parsed = parse_failure(text)
    assert parsed.format == "pytest"
    assert parsed.chain[-1].frames[-1].path == "E:/shop/tests/test_a.py"


def test_the_last_traceback_is_the_failure_when_details_come_first() -> None:
    # testtools prints other details before the traceback; a log may hold an old one.
    class Case(testtools.TestCase):
        def test_logged(self) -> None:
            logged = "retrying\nTraceback (most recent call last):\n  (an old one)\n"
            self.addDetail("log", testtools.content.text_content(logged))
            self.assertEqual(3, 4)  # noqa: PT009

    result = testtools.TestResult()
    Case("test_logged").run(result)
    [(_, text)] = result.failures
    assert text.index("(an old one)") < text.index("MismatchError")
    [report] = parse_failure(text).chain
    assert report.type == "testtools.matchers._impl.MismatchError"
    assert report.frames[0].function == "test_logged"
