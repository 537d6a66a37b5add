"""Bundle and summary files: round trips, a two-file sync, and bad files refused whole."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from proctor.bugs import (
    BugEventError,
    BundleError,
    Replica,
    decode_bundle,
    decode_summary,
    encode_bundle,
    encode_summary,
    import_bundle,
    parse_filter,
)
from proctor.bugs.bundle import read_file, write_file

from .helpers import ANN, BOB, snapshot, ticking


def _source() -> tuple[Replica, str]:
    copy = ticking()
    bug = copy.create(ANN, "Crash", "on start").id
    copy.add_tag(bug, ANN, "component:store")
    copy.link(bug, BOB, "test", "tests.a.test_x[1 2]")
    copy.comment(bug, BOB, "Ünïcode and\nnewlines")
    return copy, bug


def test_a_bundle_round_trips_with_its_filters() -> None:
    source, _ = _source()
    filters = [parse_filter("component=store !status=closed")]
    data = encode_bundle(source.events(), filters)
    header = json.loads(data.split(b"\n")[0])
    assert header == {
        "proctor": "bug-bundle",
        "version": 1,
        "filters": ["component=store '!status=closed'"],
        "events": 4,
    }
    bundle = decode_bundle(data)
    assert list(bundle.events) == source.events()
    assert bundle.filters == tuple(filters)
    assert bundle.lines == (2, 3, 4, 5)
    copy = Replica(bundle.filters)
    import_bundle(copy, data)
    assert snapshot(copy) == snapshot(source)
    assert copy.partial


def test_a_sync_by_two_files_sends_only_what_is_missing(tmp_path: Path) -> None:
    source, bug = _source()
    copy = Replica.clone(source)
    source.set_field(bug, ANN, "status", "fixed")
    copy.comment(bug, BOB, "offline")
    write_file(tmp_path / "summary", encode_summary(copy.summary()))
    summary = decode_summary(read_file(tmp_path / "summary"), "summary")
    assert summary == copy.summary()
    write_file(tmp_path / "bundle", encode_bundle(source.events_for(summary), summary.filters))
    result = import_bundle(copy, read_file(tmp_path / "bundle"), "bundle")
    assert (result.added, result.held) == (1, 0)
    source.pull(copy)
    assert snapshot(copy) == snapshot(source)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bundle", "summary"]


def test_mail_damage_that_is_harmless_is_tolerated() -> None:
    source, _ = _source()
    data = encode_bundle(source.events()).replace(b"\n", b"\r\n") + b"\r\n\r\n"
    copy = Replica()
    import_bundle(copy, data)
    assert snapshot(copy) == snapshot(source)


def _refused(data: bytes, message: str, error: type[Exception] = BundleError) -> None:
    copy, _ = _source()
    before = snapshot(copy)
    with pytest.raises(error, match=message):
        import_bundle(copy, data, "mail.bundle")
    assert snapshot(copy) == before


def test_files_that_are_not_bundles_are_refused() -> None:
    _refused(b"", "mail.bundle is empty, not a Proctor bug bundle file")
    _refused(b"hello\n", "is not a Proctor bug bundle file")
    _refused(encode_summary(Replica().summary()), "is not a Proctor bug bundle file")
    header = {"proctor": "bug-bundle", "version": 1, "filters": ["nokey=1"], "events": 0}
    _refused(json.dumps(header).encode(), "line 1: filter term 'nokey=1': unknown key")


def test_a_bundle_from_a_newer_proctor_is_refused() -> None:
    header = {"proctor": "bug-bundle", "version": 2, "filters": [], "events": 0}
    _refused(json.dumps(header).encode(), "written by a newer Proctor .*upgrade Proctor")


def test_a_truncated_bundle_is_refused() -> None:
    source, _ = _source()
    lines = encode_bundle(source.events()).split(b"\n")
    _refused(b"\n".join(lines[:-2]), "promises 4 events, it holds 3")
    _refused(b"\n".join(lines)[:-40], "mail.bundle line 5: not a JSON event", BugEventError)


def test_a_bad_event_line_is_named_and_nothing_is_merged() -> None:
    source, _ = _source()
    fresh = ticking(9000)
    fresh.create(BOB, "Other")
    good = encode_bundle([*fresh.events(), *source.events()]).split(b"\n")
    forged = json.loads(good[3])
    forged["author"] = "Mallory"
    lines = [*good[:3], json.dumps(forged).encode(), *good[4:]]
    _refused(b"\n".join(lines), "mail.bundle line 4 .*does not match its content", BugEventError)
    future = json.loads(good[3])
    future["v"] = 9
    lines = [*good[:3], json.dumps(future).encode(), *good[4:]]
    _refused(b"\n".join(lines), "mail.bundle line 4: written by a newer Proctor", BugEventError)


def test_a_duplicated_event_is_refused_with_both_lines() -> None:
    source, _ = _source()
    events = source.events()
    data = encode_bundle([*events, events[2]])
    _refused(data, "mail.bundle line 6: the same event as mail.bundle line 4", BugEventError)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"{", "not JSON"),
        (b'{"bug": "x"}', "expected"),
        (b'{"bug": "x", "heads": [], "older": []}', "bug, heads and older must be event ids"),
        (
            b'{"bug": "%s", "heads": "no", "older": []}' % (b"a" * 64),
            "heads and older must be lists",
        ),
    ],
)
def test_bad_summaries_are_refused(body: bytes, message: str) -> None:
    header = json.dumps({"proctor": "bug-summary", "version": 1, "filters": [], "bugs": 1})
    with pytest.raises(BundleError, match=f"s line 2: {message}"):
        decode_summary(header.encode() + b"\n" + body, "s")


def test_unreadable_and_unwritable_paths_say_so(tmp_path: Path) -> None:
    with pytest.raises(BundleError, match=r"cannot read .*missing"):
        read_file(tmp_path / "missing")
    with pytest.raises(BundleError, match="cannot write"):
        write_file(tmp_path / "no-such-dir" / "bundle", b"x")
    assert list(tmp_path.iterdir()) == []
