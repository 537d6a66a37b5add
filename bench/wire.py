"""Benchmark: Proctor's wire layer against python-subunit, in the same run.

Generates two subunit v2 streams of 200,000 events (all passing; and 10% of
tests failing with 2 KB tracebacks), then measures, for Proctor and for
python-subunit, the median of N repetitions of:

* encode: events already in memory -> bytes (python-subunit: StreamResultToBytes
  into a BytesIO, the calls prepared in advance);
* decode to nothing: a file on disk -> events, discarded (python-subunit:
  ByteStreamToStreamResult into a no-op StreamResult);
* decode to summary: the same into Proctor's Summary / testtools' StreamSummary;
* ``stats``: the whole command, process start to exit (`proctor stream stats FILE`
  against `subunit-stats < FILE`);
* ``to-junit``: the whole command (`proctor stream to-junit FILE` against
  `subunit2junitxml --no-passthrough < FILE`), with peak memory.

It prints medians, events per second and the ratio peer/Proctor (higher is
better for Proctor). Targets from issue 2: decode >= 4x, encode >= 3x, stats and
to-junit >= 5x.

``--big-gb N`` also writes an N GB stream and reports the peak RSS of
`proctor stream stats` and `to-junit` over it, to show memory stays flat.

Usage: python bench/wire.py [--events 200000] [--repeat 5] [--big-gb 1]
"""

from __future__ import annotations

import argparse
import gc
import io
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from proctor.events.summary import Summary
from proctor.wire import v2
from proctor.wire.event import Event, Status, ns_to_datetime

TRACEBACK_MIME = 'text/x-traceback; charset="utf8"; language="python"'
BIN = Path(sys.executable).parent


def traceback_text(i: int) -> bytes:
    frame = f'  File "/src/project/tests/test_module_{i % 50:02d}.py", line {i % 900}, in test\n'
    body = "Traceback (most recent call last):\n" + frame * 20
    body += f"AssertionError: expected {i} but got {i + 1}\n"
    return (body + "x" * max(0, 2048 - len(body)))[:2048].encode()


def make_events(total: int, failing_every: int | None) -> list[Event]:
    """Events of a run like `python -m subunit.run` writes: inprogress, attachments, outcome."""
    events: list[Event] = []
    start = 1_700_000_000_000_000_000
    i = 0
    while len(events) < total:
        test_id = f"tests.test_module_{i % 50:02d}.TestCase{i % 7}.test_{i:07d}"
        now = start + i * 1_000_000
        events.append(Event(test_id=test_id, status=Status.INPROGRESS, timestamp=now))
        if failing_every and i % failing_every == 0:
            events.append(
                Event(
                    test_id=test_id,
                    file_name="traceback",
                    file_bytes=traceback_text(i),
                    eof=True,
                    mime_type=TRACEBACK_MIME,
                    timestamp=now + 500_000,
                )
            )
            events.append(
                Event(
                    test_id=test_id,
                    status=Status.FAIL,
                    tags=frozenset({"worker-0"}),
                    timestamp=now + 500_000,
                )
            )
        else:
            events.append(
                Event(
                    test_id=test_id,
                    status=Status.SUCCESS,
                    tags=frozenset({"worker-0"}),
                    timestamp=now + 500_000,
                )
            )
        i += 1
    return events[:total]


def median_time(fn: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


# Commands run as on a user's machine: with bytecode caching. (Some machines set
# PYTHONDONTWRITEBYTECODE, which makes every run recompile Proctor's modules from
# source while python-subunit's, compiled at install, are not: unfair to both.)
ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def run_command(argv: list[str], stdin_path: Path | None = None) -> tuple[float, int]:
    """Wall time and peak RSS (KiB) of one command, output discarded."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    started = time.perf_counter()
    with open(stdin_path or os.devnull, "rb") as stdin:
        proc = subprocess.run(
            argv, stdin=stdin, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=ENV
        )
    elapsed = time.perf_counter() - started
    if proc.returncode not in (0, 1):
        raise SystemExit(f"{argv} failed ({proc.returncode}): {proc.stderr.decode()[-2000:]}")
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return elapsed, max(peak, before)


def peak_rss(argv: list[str], stdin_path: Path | None = None) -> int:
    """Peak RSS in MiB of one command, measured with GNU time when present."""
    gnu_time = shutil.which("time") or "/usr/bin/time"
    if not os.path.exists(gnu_time):
        return -1
    with open(stdin_path or os.devnull, "rb") as stdin:
        proc = subprocess.run(
            [gnu_time, "-f", "%M", *argv],
            stdin=stdin,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            env=ENV,
        )
    try:
        return int(proc.stderr.decode().strip().splitlines()[-1]) // 1024
    except (ValueError, IndexError):
        return -1


def interleaved(
    ours: tuple[list[str], Path | None], peer: tuple[list[str], Path | None], repeat: int
) -> tuple[float, float]:
    """Median wall times of two commands run in alternation, so that both see the
    same machine (this one is shared and its speed drifts); one warm-up run each
    (bytecode caches written, the input in the page cache)."""
    times: tuple[list[float], list[float]] = ([], [])
    for round_ in range(repeat + 1):
        for (argv, stdin_path), into in zip((ours, peer), times, strict=True):
            elapsed = run_command(argv, stdin_path)[0]
            if round_:
                into.append(elapsed)
    return statistics.median(times[0]), statistics.median(times[1])


class Row:
    def __init__(self, name: str, events: int, ours: float, peer: float, target: float) -> None:
        self.name, self.events, self.ours, self.peer, self.target = name, events, ours, peer, target

    def show(self) -> str:
        ratio = self.peer / self.ours
        verdict = "ok" if ratio >= self.target else "BELOW TARGET"
        ours_rate = self.events / self.ours / 1000
        return (
            f"{self.name:<28} proctor {self.ours:8.3f}s ({ours_rate:8.0f}k ev/s)"
            f"  python-subunit {self.peer:8.3f}s ({self.events / self.peer / 1000:6.0f}k ev/s)"
            f"  ratio {ratio:5.1f}x  (target {self.target:.0f}x: {verdict})"
        )


def bench_stream(label: str, events: list[Event], repeat: int, workdir: Path) -> list[Row]:
    from subunit.v2 import ByteStreamToStreamResult, StreamResultToBytes
    from testtools import StreamResult, StreamSummary

    data = v2.encode_many(events)
    path = workdir / f"{label}.subunit"
    path.write_bytes(data)
    n = len(events)
    print(f"\n== {label}: {n} events, {len(data) / 1e6:.1f} MB", flush=True)
    rows = []

    kwargs = [
        {
            "test_id": e.test_id,
            "test_status": e.status.wire_name,
            "test_tags": set(e.tags) or None,
            "file_name": e.file_name,
            "file_bytes": e.file_bytes if e.file_name is not None else None,
            "eof": e.eof,
            "mime_type": e.mime_type,
            "timestamp": ns_to_datetime(e.timestamp) if e.timestamp is not None else None,
        }
        for e in events
    ]

    # The inputs are hundreds of thousands of live objects: keep the cyclic
    # garbage collector from re-traversing them during every measurement
    # (it would tax both sides, but not equally).
    gc.collect()
    gc.freeze()

    def peer_encode() -> None:
        writer = StreamResultToBytes(io.BytesIO())
        for kw in kwargs:
            writer.status(**kw)

    rows.append(
        Row(
            "encode",
            n,
            median_time(lambda: v2.encode_many(events), repeat),
            median_time(peer_encode, repeat),
            3,
        )
    )

    def ours_decode(summary: Summary | None) -> None:
        decoder = v2.Decoder()
        with open(path, "rb") as handle:
            while block := handle.read(256 * 1024):
                batch = decoder.feed(block)
                if summary is not None:
                    for event in batch:
                        summary.send(event)
        decoder.close()
        if summary is not None:
            summary.close()

    def peer_decode(result: StreamResult) -> None:
        with open(path, "rb") as handle:
            result.startTestRun()
            ByteStreamToStreamResult(handle, non_subunit_name="stdout").run(result)
            result.stopTestRun()

    rows.append(
        Row(
            "decode to nothing",
            n,
            median_time(lambda: ours_decode(None), repeat),
            median_time(lambda: peer_decode(StreamResult()), repeat),
            4,
        )
    )
    rows.append(
        Row(
            "decode to summary",
            n,
            median_time(lambda: ours_decode(Summary()), repeat),
            median_time(lambda: peer_decode(StreamSummary()), repeat),
            4,
        )
    )
    proctor = [str(BIN / "proctor"), "stream"]
    rows.append(
        Row(
            "stats (whole command)",
            n,
            *interleaved(
                ([*proctor, "stats", str(path)], None),
                ([str(BIN / "subunit-stats")], path),
                repeat,
            ),
            5,
        )
    )
    has_junit = (
        subprocess.run([*proctor, "to-junit", "--help"], capture_output=True).returncode == 0
    )
    if not has_junit:
        print("(proctor stream to-junit is not available: skipped)")
    rows.append(
        Row(
            "to-junit (whole command)",
            n,
            *interleaved(
                ([*proctor, "to-junit", str(path)], None),
                ([str(BIN / "subunit2junitxml"), "--no-passthrough"], path),
                repeat,
            ),
            5,
        )
    ) if has_junit else None
    for row in rows:
        print(row.show(), flush=True)
    gc.unfreeze()
    if not has_junit:
        return rows
    ours_mem = peak_rss([*proctor, "to-junit", str(path)])
    peer_mem = peak_rss([str(BIN / "subunit2junitxml"), "--no-passthrough"], path)
    print(f"to-junit peak RSS: proctor {ours_mem} MiB, subunit2junitxml {peer_mem} MiB")
    return rows


def bench_big(gigabytes: float, workdir: Path) -> None:
    """Write a large stream in pieces and report peak memory of stats / to-junit over it."""
    path = workdir / "big.subunit"
    target = int(gigabytes * 1e9)
    block = v2.encode_many(make_events(200_000, 10))
    with open(path, "wb") as handle:
        written = 0
        while written < target:
            handle.write(block)
            written += len(block)
    print(f"\n== big stream: {written / 1e9:.2f} GB")
    proctor = [str(BIN / "proctor"), "stream"]
    for command in ("stats", "to-junit"):
        started = time.perf_counter()
        mem = peak_rss([*proctor, command, str(path)])
        print(f"proctor stream {command}: peak RSS {mem} MiB, {time.perf_counter() - started:.1f}s")
    small = workdir / "small.subunit"
    small.write_bytes(block)
    for command in ("stats", "to-junit"):
        mem = peak_rss([*proctor, command, str(small)])
        print(f"  (same command on {len(block) / 1e6:.0f} MB: {mem} MiB)")
    path.unlink()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--big-gb", type=float, default=0.0, help="also test memory on N GB")
    args = parser.parse_args()
    print(f"python {sys.version.split()[0]}, C fast paths: {v2.ACCELERATED}")
    with tempfile.TemporaryDirectory(prefix="proctor-bench-") as tmp:
        workdir = Path(tmp)
        bench_stream("all passing", make_events(args.events, None), args.repeat, workdir)
        bench_stream(
            "10% failing, 2 KB tracebacks", make_events(args.events, 10), args.repeat, workdir
        )
        if args.big_gb:
            bench_big(args.big_gb, workdir)


if __name__ == "__main__":
    main()
