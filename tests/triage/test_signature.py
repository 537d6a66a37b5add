"""Signatures: what makes two failures one fault, and what keeps two faults apart."""

from __future__ import annotations

import hashlib
import json
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from proctor.runner.casualty import crash_text, timeout_text
from proctor.runner.slot import Slot
from proctor.testing import FakeBackend
from proctor.triage import ALGORITHM, Project, Signature, signature_of, signature_of_record
from proctor.wire.event import TRACEBACK_MIME_TYPE, Status
from proctor.wire.record import Attachment, TestRecord
from tests.triage.test_traceback import JAVA, PYTEST_LONG, PYTEST_SHORT

ROOT = "/home/ci/build-17/shop"


def cpython(frames: list[tuple[str, int, str, str]], exception: str, prefix: str = ROOT) -> str:
    lines = ["Traceback (most recent call last):"]
    for path, line, function, source in frames:
        where = path if path.startswith("/") or path[1:3] == ":\\" else f"{prefix}/{path}"
        lines.append(f'  File "{where}", line {line}, in {function}')
        if source:
            lines.append(f"    {source}")
    return "\n".join([*lines, exception, ""])


def short(frames: list[tuple[str, int, str, str]], exception: str) -> str:
    lines = []
    for path, line, function, source in frames:
        lines += [f"{path}:{line}: in {function}", f"    {source}"]
    return "\n".join([*lines, f"E   {exception}", ""])


LIB = "/usr/lib/python3.11/json/decoder.py"
STACK = [
    ("tests/test_cart.py", 12, "test_total", "cart.total()"),
    ("shop/cart.py", 40, "total", "return sum(self.prices[k] for k in self.items)  # hot path"),
]


def test_a_signature_names_its_algorithm_kind_key_and_digest() -> None:
    signature = signature_of(cpython(STACK, "KeyError: 'sku-93'"), project=Project((ROOT,)))
    assert signature.algorithm == ALGORITHM == "frames-v1"
    assert signature.kind == "traceback"
    assert signature.key == (
        "KeyError @ shop/cart.py:total | return sum(self.prices[k]for k in self.items)"
    )
    assert len(signature.digest) == 16
    assert str(signature) == f"frames-v1:{signature.digest}"
    assert not signature.weak


def test_the_digest_is_pinned_for_the_algorithm() -> None:
    # Changing what a frames-v1 key hashes to orphans every stored cluster: such a
    # change must come with a new algorithm name (and this pin moves with it).
    signature = signature_of(cpython(STACK, "KeyError: 'sku-93'"), project=Project((ROOT,)))
    hashed = f"frames-v1\0traceback\0{signature.key}".encode()
    assert signature.digest == hashlib.sha256(hashed).hexdigest()[:16] == "a996f1c11718d618"


def test_the_same_fault_reads_alike_in_cpython_and_pytest_formats() -> None:
    native = signature_of(cpython(STACK, "KeyError: 'a'"), project=Project((ROOT,)))
    pytest_short = signature_of(short(STACK, "KeyError: 'b'"), project=Project((ROOT,)))
    assert native == pytest_short


def test_the_message_does_not_matter_when_there_is_a_stack_but_the_type_does() -> None:
    one = signature_of(cpython(STACK, "KeyError: 'sku-93'"))
    assert one == signature_of(cpython(STACK, "KeyError: 'totally different'"))
    assert one != signature_of(cpython(STACK, "TypeError: 'sku-93'"))


def test_the_innermost_project_frame_decides_not_the_call_path() -> None:
    other_path = [
        ("tests/test_checkout.py", 80, "test_pay", "checkout.pay()"),
        ("shop/checkout.py", 9, "pay", "amount = cart.total()"),
        STACK[1],
    ]
    assert signature_of(cpython(STACK, "KeyError: 'x'")) == signature_of(
        cpython(other_path, "KeyError: 'x'")
    )


def test_a_library_fault_from_two_project_callers_is_two_faults() -> None:
    def via(function: str) -> str:
        frames = [
            ("shop/io.py", 5, function, "return json.loads(blob)"),
            (LIB, 355, "raw_decode", "raise JSONDecodeError(...)"),
        ]
        return cpython(frames, "json.decoder.JSONDecodeError: Expecting value: line 1 column 5")

    one, two = signature_of(via("read_order")), signature_of(via("read_customer"))
    assert one != two
    assert "json/decoder.py" not in one.key  # library frames only when no project frame


def test_library_frames_are_used_when_there_is_no_project_frame() -> None:
    frames = [
        ("/venv/lib/python3.11/site-packages/yaml/loader.py", 3, "load", "x"),
        (LIB, 355, "raw_decode", "raise JSONDecodeError(...)"),
    ]
    signature = signature_of(cpython(frames, "ValueError: bad"))
    assert signature.key == "ValueError @ yaml/loader.py:load > json/decoder.py:raw_decode"


def test_two_raise_statements_of_one_function_are_two_faults() -> None:
    def raising(statement: str) -> str:
        return cpython([("shop/config.py", 7, "parse_window", statement)], "ValueError: 5")

    assert signature_of(raising("raise ValueError(start)")) != signature_of(
        raising("raise ValueError(end)")
    )


def test_chained_exceptions_key_every_link() -> None:
    root = cpython([("shop/config.py", 4, "load", "open(path)")], "FileNotFoundError: x")
    last = cpython([("shop/config.py", 6, "load", "raise ConfigError(path) from e")], "ConfigError")
    text = (
        root + "\nThe above exception was the direct cause of the following exception:\n\n" + last
    )
    key = signature_of(text).key
    assert key.startswith("FileNotFoundError @ shop/config.py:load | open(path) -> ConfigError")


def test_no_stack_falls_back_to_the_normalised_message() -> None:
    one = signature_of("ValueError: port 70123 out of range at 2026-12-04T17:00:00")
    assert one.kind == "message"
    assert one.key == "ValueError: port <n> out of range at <date>"
    diff = signature_of("AssertionError: Lists differ: ['a-1'] != ['b-2']\n\nFirst differing...")
    assert diff.key == "AssertionError: Lists differ: [<str>] != [<str>]"


def test_pytest_long_and_short_texts_are_signed() -> None:
    long = signature_of(PYTEST_LONG)
    assert long.key == (
        "FileNotFoundError @ app/config.py:load | with open(path)as f: -> "
        'ConfigError @ app/config.py:load | raise ConfigError(f"cannot load{path}")from e'
    )
    assert signature_of(PYTEST_SHORT).key == "AssertionError @ tests/test_x.py:helper | assert x==2"


def test_java_is_keyed_by_class_and_method_of_project_frames() -> None:
    signature = signature_of(JAVA)
    assert signature.key == (
        "IOException @ com.example.shop.Store:save -> "
        "AssertionFailedError @ com.example.shop.CartTest:addsItems"
    )


@pytest.mark.parametrize(
    ("text", "kind", "key"),
    [
        ("", "empty", "no detail"),
        ("Segmentation fault (core dumped)", "crash", "crash"),
        (
            "worker exited with signal 9 while running this test",
            "crash",
            "crash: SIGKILL",
        ),
        (
            "Worker 3 (pid 41) killed by signal 9 (SIGKILL) while running this test.",
            "crash",
            "crash: SIGKILL",
        ),
        ("Worker 0 exited with code 3 before this test started", "crash", "crash: exit 3"),
        ("Timed out: still running after 30s (--timeout).", "timeout", "timeout"),
        (
            "something odd\nconnection refused by 10.1.2.3:80\nbye",
            "text",
            "connection refused by <ip>:<port>",
        ),
    ],
)
def test_text_that_is_not_a_traceback(text: str, kind: str, key: str) -> None:
    signature = signature_of(text)
    assert (signature.kind, signature.key) == (kind, key)


def _dump_of_a_hung_process(tmp_path: Path) -> str:
    """The real faulthandler dump (as Proctor's worker registers it) of a process
    stuck in a project function."""
    script = tmp_path / "shop" / "locks.py"
    script.parent.mkdir()
    script.write_text(
        "import faulthandler, signal, sys, time\n"
        "faulthandler.register(signal.SIGUSR1, all_threads=True)\n\n"
        "def wait_for_lock():\n    print('ready', flush=True)\n    time.sleep(60)\n\n"
        "wait_for_lock()\n"
    )
    with subprocess.Popen(
        [sys.executable, str(script)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    ) as process:
        try:
            assert process.stdout is not None
            assert process.stderr is not None
            assert process.stdout.readline() == "ready\n"
            process.send_signal(signal.SIGUSR1)
            dump: list[str] = []
            while not dump or "in <module>" not in dump[-1]:
                dump.append(process.stderr.readline())
        finally:
            process.kill()
    return "".join(dump)


@pytest.mark.slow
@pytest.mark.skipif(sys.platform == "win32", reason="SIGUSR1")
def test_a_timeout_is_keyed_by_where_the_test_was_stuck(tmp_path: Path) -> None:
    dump = _dump_of_a_hung_process(tmp_path)
    backend = FakeBackend([])
    slot = Slot(backend.start(0), 0.0)
    slot.dump_mark = 0
    slot.add_output(dump.encode(), 1.0)
    text, _ = timeout_text(slot, 5.0)
    signature = signature_of(text, project=Project((str(tmp_path),)))
    assert signature.kind == "timeout"
    assert signature.key == "timeout @ shop/locks.py:wait_for_lock"
    slot.add_output(b"", 2.0)
    assert signature_of(timeout_text(slot, 99.0)[0], project=Project((str(tmp_path),))) == signature


def test_a_worker_casualty_is_a_crash_keyed_by_its_signal() -> None:
    backend = FakeBackend([])
    slot = Slot(backend.start(0), 0.0)
    slot.current = "shop.tests.test_a"
    killed = signature_of(crash_text(slot, "shop.tests.test_a", -signal.SIGKILL))
    assert (killed.kind, killed.key) == ("crash", "crash: SIGKILL")
    other = Slot(backend.start(1), 0.0)
    assert signature_of(crash_text(other, "shop.tests.test_b", -signal.SIGKILL)) == killed
    assert signature_of(crash_text(slot, "shop.tests.test_a", 3)).key == "crash: exit 3"


@pytest.mark.parametrize(
    ("status", "attachments", "expected"),
    [
        (Status.SUCCESS, (), None),
        (Status.SKIP, (), None),
        (Status.XFAIL, (), None),
        (Status.UXSUCCESS, (), ("unexpected-success", "unexpected success")),
        (Status.INPROGRESS, (), ("unfinished", "never finished")),
        (Status.FAIL, (), ("empty", "no detail")),
        (Status.FAIL, (Attachment("reason", b"ValueError: 3"),), ("message", "ValueError: <n>")),
        (
            Status.FAIL,
            (Attachment("traceback", PYTEST_SHORT.encode(), TRACEBACK_MIME_TYPE),),
            ("traceback", "AssertionError @ tests/test_x.py:helper | assert x==2"),
        ),
    ],
)
def test_signature_of_record_by_status(
    status: Status, attachments: tuple[Attachment, ...], expected: tuple[str, str] | None
) -> None:
    signature = signature_of_record(TestRecord("t", status, attachments=attachments))
    if expected is None:
        assert signature is None
    else:
        assert isinstance(signature, Signature)
        assert (signature.kind, signature.key) == expected
        assert signature.weak == (expected[0] in ("unexpected-success", "unfinished", "empty"))


# -- properties: invariant under line numbers and where the project lives

_NAME = st.text("abcdefghijklmnopqrstuvwxyz_", min_size=1, max_size=8).map("m".__add__)
_FRAME = st.tuples(
    st.lists(_NAME, min_size=1, max_size=3).map(lambda parts: "/".join(parts) + ".py"),
    _NAME,
    st.sampled_from(["x = f(y)", "return self.items[key]", "assert a == b", "raise Error(msg)"]),
)
_PREFIX = st.lists(_NAME, min_size=1, max_size=4).map(lambda parts: "/" + "/".join(parts))


@settings(max_examples=60, deadline=None)
@given(
    frames=st.lists(_FRAME, min_size=1, max_size=6),
    lines=st.lists(st.integers(1, 100_000), min_size=12, max_size=12),
    prefixes=st.tuples(_PREFIX, _PREFIX),
)
@pytest.mark.slow
def test_signatures_ignore_line_numbers_and_where_the_project_is(
    frames: list[tuple[str, str, str]], lines: list[int], prefixes: tuple[str, str]
) -> None:
    def render(shift: int, prefix: str) -> str:
        numbered = [
            (path, lines[(i + shift) % 12], fn, src) for i, (path, fn, src) in enumerate(frames)
        ]
        return cpython(numbered, "ValueError: boom", prefix=prefix)

    first, second = (render(0, prefixes[0]), render(5, prefixes[1]))
    with_roots = [
        signature_of(first, project=Project((prefixes[0],))),
        signature_of(second, project=Project((prefixes[1],))),
    ]
    assert with_roots[0] == with_roots[1]
    if all("/" in path for path, _, _ in frames):
        # No roots: keyed by the last two path parts, which a module directly under
        # the checkout does not have below it.
        assert signature_of(first) == signature_of(second)
    relative = short(
        [(p, lines[i % 12], fn, src) for i, (p, fn, src) in enumerate(frames)], "ValueError: x"
    )
    assert signature_of(relative) == with_roots[0]  # pytest's paths are relative already


def test_a_formatter_reformatting_the_failing_line_keeps_the_signature() -> None:
    def line(source: str) -> str:
        return cpython([("shop/cart.py", 3, "add", source)], "ValueError: x")

    one = signature_of(line("raise ValueError( 'bad item %s' % (item,) )"))
    assert one == signature_of(line('raise ValueError("bad item %s" % (item, ))  # noqa: E501'))
    assert one != signature_of(line("raise ValueError('bad sku %s' % (item,))"))


def test_timed_out_in_a_pytest_report_is_no_timeout_casualty() -> None:
    text = PYTEST_SHORT.replace("    helper(1)", '    helper("timed out")')
    assert signature_of(text).kind == "traceback"


@pytest.mark.parametrize(
    "text",
    [
        "x " + "1" * 50_000 + "g",
        "a-" * 25_000 + "a.com:1",
        "Timed out " + "exit code 1 " * 20_000,
        "Worker 1 killed by signal " + "9" * 100_000,
        "Fatal Python error: " + "x" * 100_000,
        "\tat " + "a." * 50_000,
    ],
    ids=["digits-glued", "dashed-host", "timeout", "signal", "fatal", "java"],
)
def test_hostile_text_is_signed_in_bounded_time(text: str) -> None:
    # No timing assertion: a quadratic pattern makes this test hang, not fail.
    signature = signature_of(text)
    assert len(signature.key) < 1_000


@settings(max_examples=200, deadline=None)
@given(
    st.text(
        alphabet=st.sampled_from(list('Trace (mostl):\n File"/x.py", line 1in_>E \t.at0')),
        max_size=400,
    )
)
def test_any_text_gets_a_signature(text: str) -> None:
    signature = signature_of(text)
    assert signature.algorithm == ALGORITHM
    assert signature.digest


_FAULTS_SCRIPT = """\
import json, sys, traceback

def inner(d):
    return d["k"] + \\
        1

def mid():
    try:
        inner({})
    except KeyError as e:
        raise ValueError("wrapped") from e

def gen():
    return sum(x["a"] for x in [{}])

out = []
for f in (mid, gen, lambda: json.loads("{")):
    try:
        f()
    except Exception as e:
        out.append("".join(traceback.format_exception(type(e), e, e.__traceback__)))
print(json.dumps(out))
"""


def _signatures_under(python: str, where: Path) -> list[str]:
    where.mkdir()
    script = where / "faults.py"
    script.write_text(_FAULTS_SCRIPT)
    done = subprocess.run([python, str(script)], capture_output=True, text=True, check=True)
    project = Project((str(where),))
    return [signature_of(text, project=project).key for text in json.loads(done.stdout)]


def _python(version: str) -> str | None:
    """A working interpreter of ``version``: on PATH, else installed by pyenv."""
    candidates = [shutil.which(f"python{version}")]
    candidates += sorted(
        str(p) for p in Path.home().glob(f".pyenv/versions/{version}.*/bin/python")
    )
    for candidate in candidates:
        if candidate and subprocess.run([candidate, "-c", ""], capture_output=True).returncode == 0:
            return candidate
    return None


@pytest.mark.slow
@pytest.mark.parametrize("version", ["3.10", "3.12", "3.13"])
def test_signatures_agree_across_python_versions(tmp_path: Path, version: str) -> None:
    python = _python(version)
    if python is None:
        pytest.skip(f"no python{version} here")
    ours = _signatures_under(sys.executable, tmp_path / "ours")
    theirs = _signatures_under(python, tmp_path / "theirs")
    assert ours == theirs
    assert ours[1] == 'KeyError @ faults.py:<anonymous> | return sum(x["a"]for x in[{}])'


def test_markers_cut_paths_where_the_project_starts() -> None:
    def at(prefix: str) -> str:
        return cpython([(f"{prefix}/src/shop/cart.py", 3, "add", "x()")], "KeyError: 1")

    project = Project(markers=("src",))
    one = signature_of(at("/home/ci/build-17/src/checkouts/shop"), project=project)
    two = signature_of(at("/Users/me/code/shop"), project=project)
    assert one == two
    assert one.key == "KeyError @ src/shop/cart.py:add | x()"


def test_windows_paths_are_keyed_like_posix_ones() -> None:
    frames = [
        ("C:\\Users\\me\\shop\\src\\shop\\cart.py", 3, "add", "json.loads(x)"),
        ("C:\\Python311\\Lib\\json\\decoder.py", 355, "raw_decode", "raise X"),
    ]
    text = cpython(frames, "json.decoder.JSONDecodeError: x")
    signature = signature_of(text, project=Project(("C:\\Users\\me\\shop",)))
    assert signature.key == "JSONDecodeError @ src/shop/cart.py:add | json.loads(x)"
    library_only = cpython(frames[1:], "ValueError: x")
    assert signature_of(library_only).key == "ValueError @ json/decoder.py:raw_decode"


SUREFIRE = """\
<?xml version="1.0" encoding="UTF-8"?>
<testsuite name="com.example.shop.CartTest" tests="3" failures="2" errors="1">
  <testcase name="addsItems" classname="com.example.shop.CartTest" time="0.01">
    <failure message="expected: &lt;1&gt; but was: &lt;{n}&gt;"
             type="org.opentest4j.AssertionFailedError">org.opentest4j.AssertionFailedError: \
expected: &lt;1&gt; but was: &lt;{n}&gt;
\tat org.junit.jupiter.api.AssertionUtils.fail(AssertionUtils.java:55)
\tat org.junit.jupiter.api.Assertions.assertEquals(Assertions.java:{line})
\tat com.example.shop.CartTest.addsItems(CartTest.java:{line})
</failure>
  </testcase>
  <testcase name="removesItems" classname="com.example.shop.CartTest" time="0.01">
    <error message="boom {n}" type="java.lang.IllegalStateException">\
java.lang.IllegalStateException: boom {n}
\tat com.example.shop.Cart.remove(Cart.java:{line})
\tat com.example.shop.CartTest.removesItems(CartTest.java:{line})
</error>
  </testcase>
</testsuite>
"""


@pytest.mark.parametrize("n", [2, 3])
def test_junit_xml_from_java_is_signed_by_class_and_method(n: int) -> None:
    from proctor.events import collect_records
    from proctor.wire.junit import decode

    xml = SUREFIRE.format(n=n, line=10 * n)
    signatures = {
        record.test_id: signature_of_record(record)
        for record in collect_records(decode(xml.encode()))
    }
    assert {k: s.key for k, s in signatures.items() if s} == {
        "com.example.shop.CartTest.addsItems": (
            "AssertionFailedError @ com.example.shop.CartTest:addsItems"
        ),
        "com.example.shop.CartTest.removesItems": (
            "IllegalStateException @ com.example.shop.Cart:remove"
        ),
    }
