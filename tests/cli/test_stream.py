"""``proctor stream``, run in-process the way a user types it, beside python-subunit's tools."""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from proctor.events import Event, Status
from proctor.wire import v2
from tests.cli.invoke import invoke
from tests.wire.peer import subunit_decode

BIN = Path(sys.executable).parent

SAMPLE_TESTS = """
import unittest

class T(unittest.TestCase):
    def test_ok(self):
        pass

    def test_fail(self):
        print("printed by test_fail")
        self.assertEqual(1, 2)

    @unittest.skip("not today")
    def test_skip(self):
        pass

    @unittest.expectedFailure
    def test_xfail(self):
        self.fail("expected")

    def test_sub(self):
        for i in range(4):
            with self.subTest(i=i):
                self.assertEqual(i % 2, 0)
"""


@pytest.fixture(scope="module")
def subunit_run_stream(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real stream, written by ``python -m subunit.run`` on a small suite."""
    project = tmp_path_factory.mktemp("sample")
    (project / "tests").mkdir()
    (project / "tests" / "__init__.py").write_text("")
    (project / "tests" / "test_sample.py").write_text(textwrap.dedent(SAMPLE_TESTS))
    out = subprocess.run(
        [sys.executable, "-m", "subunit.run", "discover", "-s", "tests", "-t", "."],
        cwd=project,
        capture_output=True,
        check=True,
    ).stdout
    path = project / "run.subunit"
    path.write_bytes(out)
    return path


def _peer(tool: str, path: Path, *args: str) -> subprocess.CompletedProcess[bytes]:
    with open(path, "rb") as stdin:
        return subprocess.run([str(BIN / tool), *args], stdin=stdin, capture_output=True)


def test_stats_counts_like_subunit_stats(subunit_run_stream: Path) -> None:
    result = invoke("stream", "stats", str(subunit_run_stream))
    assert result.exit_code == 1  # the stream holds failures
    lines = dict(line.split(":", 1) for line in result.stdout.splitlines() if ":" in line)
    peer = _peer("subunit-stats", subunit_run_stream)
    assert peer.returncode == 1
    peer_lines = dict(
        line.split(":", 1) for line in peer.stdout.decode().splitlines() if ":" in line
    )
    for key in ("Total tests", "Failed tests", "Skipped tests"):
        assert int(lines[key]) == int(peer_lines[key]), key
    # subunit-stats counts an expected failure as passed; we show it apart.
    assert int(lines["Expected failures"]) == 1
    assert int(lines["Passed tests"]) + 1 == int(peer_lines["Passed tests"])


def test_stats_reads_stdin_and_succeeds_on_a_clean_stream() -> None:
    data = v2.encode_many([Event(test_id="a", status=Status.SUCCESS)])
    result = invoke("stream", "stats", stdin=data)
    assert result.exit_code == 0
    assert re.search(r"^Total tests: +1$", result.stdout, re.MULTILINE)


def test_an_unexpected_success_fails_the_stream() -> None:
    """testtools' StreamSummary calls this a success; the StreamResult docs and we do not."""
    data = v2.encode_many([Event(test_id="a", status=Status.UXSUCCESS)])
    assert invoke("stream", "stats", stdin=data).exit_code == 1


def test_ls_lists_the_same_tests_as_subunit_ls_with_durations(subunit_run_stream: Path) -> None:
    result = invoke("stream", "ls", str(subunit_run_stream))
    ours = {line.split()[0]: float(line.split()[1]) for line in result.stdout.splitlines()}
    peer = _peer("subunit-ls", subunit_run_stream, "--no-passthrough").stdout.decode().split()
    assert set(ours) == set(peer)
    assert all(duration >= 0 for duration in ours.values())
    bare = invoke("stream", "ls", "--no-times", "--status", str(subunit_run_stream))
    assert "tests.test_sample.T.test_fail fail" in bare.stdout


def test_filter_defaults_to_subunit_filters_outcomes_and_keeps_what_it_loses(
    subunit_run_stream: Path,
) -> None:
    original = v2.decode(subunit_run_stream.read_bytes())
    result = invoke("stream", "filter", "--no-passthrough", str(subunit_run_stream))
    assert result.exit_code == 1
    kept = subunit_decode(result.stdout_bytes)  # python-subunit reads our output
    kept_ids = {e.test_id for e in kept if e.test_id and e.status is not Status.EXISTS}
    peer = _peer("subunit-filter", subunit_run_stream, "--no-passthrough")
    peer_events = subunit_decode(peer.stdout)
    peer_ids = {e.test_id for e in peer_events if e.test_id}
    assert (
        kept_ids
        == peer_ids
        == {
            "tests.test_sample.T.test_fail",
            "tests.test_sample.T.test_skip",
            "tests.test_sample.T.test_sub",
        }
    )
    # Every kept event is exactly an original event: inprogress timestamps included.
    assert all(event in original for event in kept)
    assert any(e.status is Status.INPROGRESS and e.timestamp for e in kept)
    # What subunit-filter loses: the enumeration and the start timestamps.
    assert sum(e.status is Status.EXISTS for e in kept) == 5
    assert not any(e.status is Status.EXISTS for e in peer_events)
    starts = {e.test_id: e.timestamp for e in kept if e.status is Status.INPROGRESS}
    ends = {
        e.test_id: e.timestamp for e in kept if e.status.is_final and e.status is not Status.EXISTS
    }
    assert all(starts[t] < ends[t] for t in starts)  # type: ignore[operator]


def test_filter_keeps_exists_and_route_codes() -> None:
    stream = [
        Event(test_id="a", status=Status.EXISTS),
        Event(test_id="a", status=Status.INPROGRESS, route_code="0", timestamp=5),
        Event(test_id="a", status=Status.FAIL, route_code="0", timestamp=9),
        Event(test_id="b", status=Status.SUCCESS, route_code="1", timestamp=9),
    ]
    result = invoke("stream", "filter", "--all", "--with", "^a$", stdin=v2.encode_many(stream))
    assert v2.decode(result.stdout_bytes) == stream[:3]


def test_filter_rejects_a_bad_regex_with_a_clear_message() -> None:
    result = invoke("stream", "filter", "--with", "(", stdin=b"")
    assert result.exit_code == 2
    assert "--with" in result.stderr
    assert "not a valid regular expression" in result.stderr


def test_tag_adds_and_removes_tags_python_subunit_sees(subunit_run_stream: Path) -> None:
    result = invoke("stream", "tag", "-a", "ci", "-a", "py311", str(subunit_run_stream))
    events = subunit_decode(result.stdout_bytes)
    tagged = [e for e in events if e.test_id]
    assert tagged
    assert all({"ci", "py311"} <= e.tags for e in tagged)
    again = invoke("stream", "tag", "-r", "ci", stdin=result.stdout_bytes)
    assert all("ci" not in e.tags for e in v2.decode(again.stdout_bytes))
    assert invoke("stream", "tag", stdin=b"").exit_code == 2


def test_trace_shows_one_line_per_test_failures_in_full_and_a_summary(
    subunit_run_stream: Path,
) -> None:
    result = invoke("stream", "trace", "--no-color", str(subunit_run_stream))
    assert result.exit_code == 1
    out = result.stdout
    assert "tests.test_sample.T.test_ok [" in out
    assert "] ... ok" in out
    assert "test_fail [" in out
    assert "FAILED" in out
    assert "AssertionError: 1 != 2" in out
    assert "traceback (i=1)" in out
    assert "traceback (i=3)" in out
    assert "SKIPPED: not today" in out
    assert "1 passed, 2 failed, 1 skipped, 1 xfailed in " in out
    assert "\x1b[" not in out  # no colour codes in a CI log


def test_trace_names_the_worker_and_reports_unfinished_tests() -> None:
    stream = [
        Event(test_id="a", status=Status.INPROGRESS, route_code="1", timestamp=0),
        Event(test_id="a", status=Status.SUCCESS, route_code="1", timestamp=2_000_000),
        Event(test_id="crashed", status=Status.INPROGRESS, route_code="0", timestamp=0),
    ]
    result = invoke("stream", "trace", stdin=v2.encode_many(stream))
    assert "{1} a [0.002s] ... ok" in result.stdout
    assert "{0} crashed [?] ... UNFINISHED" in result.stdout
    assert "1 unfinished" in result.stdout
    assert result.exit_code == 1


def test_missing_input_file_is_a_clear_error(tmp_path: Path) -> None:
    result = invoke("stream", "stats", str(tmp_path / "nope.subunit"))
    assert result.exit_code == 2
    assert "nope.subunit" in result.stderr
    assert "No such file" in result.stderr


def test_two_files_are_one_stream(tmp_path: Path) -> None:
    first = tmp_path / "1.subunit"
    second = tmp_path / "2.subunit"
    first.write_bytes(v2.encode(Event(test_id="a", status=Status.SUCCESS)))
    second.write_bytes(v2.encode(Event(test_id="b", status=Status.FAIL)))
    result = invoke("stream", "ls", "--no-times", str(first), str(second))
    assert result.stdout.split() == ["a", "b"]
    assert result.exit_code == 1


def test_garbage_input_is_passed_through_not_fatal() -> None:
    data = b"\xb3\x00garbage" + v2.encode(Event(test_id="ok", status=Status.SUCCESS))
    result = invoke("stream", "ls", "--no-times", "--status", stdin=data)
    assert "ok success" in result.stdout
    assert "subunit.parser fail" in result.stdout
    assert result.exit_code == 1


def _peak_rss_mib(*args: str) -> float:
    """Peak RSS of ``proctor ARGS`` run in a fresh interpreter."""
    script = (
        "import resource, sys\n"
        "from proctor.cli.main import main\n"
        "sys.stdout = open('/dev/null', 'w')\n"
        f"main({list(args)!r})\n"
        "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr)\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, check=True)
    return int(done.stderr.decode().split()[-1]) / 1024


@pytest.mark.slow
@pytest.mark.parametrize("command", ["stats", "ls", "trace"])
def test_memory_stays_flat_on_a_large_stream(tmp_path: Path, command: str) -> None:
    """The same peak memory for a 4 MB and a 100 MB stream: only running tests are held."""
    block = []
    for i in range(10_000):
        test_id = f"tests.m{i % 50}.T.test_{i}"
        block.append(Event(test_id=test_id, status=Status.INPROGRESS, timestamp=i))
        if i % 10 == 0:
            tb = b"Traceback (most recent call last):\n" + b"x" * 2000
            block.append(Event(test_id=test_id, file_name="traceback", file_bytes=tb, eof=True))
            block.append(Event(test_id=test_id, status=Status.FAIL, timestamp=i + 1))
        else:
            block.append(Event(test_id=test_id, status=Status.SUCCESS, timestamp=i + 1))
    chunk = v2.encode_many(block)
    small = tmp_path / "small.subunit"
    small.write_bytes(chunk)
    big = tmp_path / "big.subunit"
    with open(big, "wb") as handle:
        for _ in range(100_000_000 // len(chunk)):
            handle.write(chunk)
    grown = _peak_rss_mib("stream", command, str(big)) - _peak_rss_mib(
        "stream", command, str(small)
    )
    # 25x the input; failure ids are remembered (a few MB), nothing else grows.
    assert grown < 25, f"peak memory grew by {grown:.0f} MiB"


def test_filter_short_flags_mean_what_subunit_filter_means(subunit_run_stream: Path) -> None:
    """subunit-filter's -s and -f are --no-success and --no-failure."""
    ours = invoke("stream", "filter", "-f", "--no-passthrough", str(subunit_run_stream))
    peer = _peer("subunit-filter", subunit_run_stream, "-f", "--no-passthrough")
    ran = {
        e.test_id
        for e in subunit_decode(ours.stdout_bytes)
        if e.status.is_final and e.status is not Status.EXISTS
    }
    assert ran == {e.test_id for e in subunit_decode(peer.stdout) if e.test_id}
    assert "tests.test_sample.T.test_fail" not in ran
    kept = invoke("stream", "filter", "--success", "-s", str(subunit_run_stream))
    assert not any(e.status is Status.SUCCESS for e in v2.decode(kept.stdout_bytes))


def test_trace_keeps_a_character_split_between_reads_whole() -> None:
    text = "a" * 262_143 + "é\n"
    data = text.encode() + v2.encode(Event(test_id="t", status=Status.SUCCESS))
    result = invoke("stream", "trace", stdin=data)
    assert "é" in result.stdout
    assert "\ufffd" not in result.stdout


def test_an_event_that_cannot_be_written_keeps_the_ones_before_it() -> None:
    good = [f'{{"test_id": "t{i}", "status": "success"}}' for i in range(100)]
    bad = '{"test_id": "late", "status": "success", "timestamp": "1960-01-01T00:00:00Z"}'
    result = invoke("stream", "from-json", stdin=("\n".join([*good, bad]) + "\n").encode())
    assert result.exit_code == 2
    written = v2.decode(result.stdout_bytes)
    assert [e.test_id for e in written] == [f"t{i}" for i in range(100)]
    assert "line 101" in result.stderr or "cannot be written" in result.stderr


@pytest.mark.parametrize(
    "first_line",
    [b"test: starting the database\n", b'{"level": "info"}\n', b"<div>log</div>\n"],
)
def test_a_v2_stream_that_starts_with_text_is_read_as_v2(first_line: bytes) -> None:
    """Text a suite printed before the first packet may look like v1, JSON or XML."""
    data = first_line + v2.encode_many(
        [Event(test_id="a", status=Status.SUCCESS), Event(test_id="b", status=Status.FAIL)]
    )
    result = invoke("stream", "ls", "--no-times", "--status", stdin=data)
    assert result.stdout.split("\n")[:2] == ["a success", "b fail"]
    assert result.exit_code == 1
