"""A real writer process for the crash and concurrency tests (run as a script).

    python _writer_child.py URL MODE COUNT BATCH TAG

MODE ``hang``: store COUNT records, flush, say so, then hang until killed.
MODE ``stream``: store COUNT records in batches of BATCH, saying after each
flush how many are stored, then finish (unless killed first).
MODE ``complete``: as ``stream``, as a run of the whole suite
(``partial=False``), but wait for a line on stdin before finishing.
Records cycle over 50 test ids; every 7th fails with a traceback shared by
every process, so concurrent writers race on the same tests and blobs.
"""

from __future__ import annotations

import sys
import time

from proctor.store import RunMetadata, open_store
from proctor.wire.event import TRACEBACK_MIME_TYPE, Status
from proctor.wire.record import Attachment, TestRecord

T0 = 1_700_000_000_000_000_000


def make(i: int) -> TestRecord:
    test_id = f"pkg.test_{i % 50:02d}"
    if i % 7 == 0:
        traceback = Attachment("traceback", b"AssertionError: shared\n" * 20, TRACEBACK_MIME_TYPE)
        return TestRecord(
            test_id, Status.FAIL, None, T0 + i, T0 + i + 1000, frozenset(), (traceback,)
        )
    return TestRecord(test_id, Status.SUCCESS, None, T0 + i, T0 + i + 2000, frozenset({"w"}))


def main() -> None:
    url, mode, count, batch, tag = sys.argv[1:6]
    store = open_store(url)
    writer = store.begin_run(RunMetadata(properties={"writer": tag}, partial=mode != "complete"))
    writer.batch_size = int(batch)
    writer.flush_interval = 3600.0  # only size and explicit flushes write
    print("run", writer.run_id, flush=True)
    for i in range(int(count)):
        writer.add(make(i))
        if mode != "hang" and (i + 1) % int(batch) == 0:
            print("stored", i + 1, flush=True)
    writer.flush()
    print("stored", count, flush=True)
    if mode == "hang":
        time.sleep(3600)
    if mode == "complete":
        sys.stdin.readline()
    writer.finish()
    print("finished", flush=True)


if __name__ == "__main__":
    main()
