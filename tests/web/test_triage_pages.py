"""The triage and bug pages through Starlette's TestClient: the overview's
clusters, flaky and broken tests and classification rate under its filters;
the cluster list and a cluster; the bug list and a bug; each failure's cluster
and known bugs on the run and test pages; HTML, JSON and CSV of each, with
hostile ids, keys, bug titles, comments, authors and rule references as text."""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path

from starlette.testclient import TestClient

from proctor.cli.repository import sign_failures
from proctor.store.model import RunMetadata
from proctor.store.opening import open_store
from proctor.web.app import create_app
from proctor.web.repository import ReadOnlyRepository
from proctor.web.triage_pages import TriageSource
from proctor.wire.event import NS_PER_SECOND, Status
from proctor.wire.record import Attachment, TestRecord
from tests.web.conftest import NOW
from tests.web.project import (
    BINARY_ID,
    HOSTILE_AUTHOR,
    HOSTILE_COMMENT,
    HOSTILE_LINK,
    HOSTILE_RULE_BUG,
    HOSTILE_TITLE,
    HUGE_ID,
    T0,
    XSS_IDS,
)

FLIP = "pkg.test_a.T.test_flip"
HOSTILE_MARKS = (
    "<script>window.__xss",
    "<img src=x",
    "<b>mallory",
    'onmouseover="window',
    "\x1b",
    "\x07",
)


def pages(known: dict[str, str]) -> list[str]:
    return [
        "/clusters",
        "/clusters?branch=main&job=unit&window=30d",
        f"/clusters/{known['flip_cluster']}",
        f"/clusters/{known['hostile_cluster']}",
        "/bugs",
        "/bugs?status=active&q=flip",
        f"/bugs/{known['flip_bug']}",
        f"/bugs/{known['huge_bug'][:8]}",
    ]


def _json_url(path: str) -> str:
    stem, _, query = path.partition("?")
    return stem + ".json" + (f"?{query}" if query else "")


def _csv_rows(client: TestClient, path: str) -> list[list[str]]:
    stem, _, query = path.partition("?")
    answer = client.get(stem + ".csv" + (f"?{query}" if query else ""))
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("text/csv")
    return list(csv.reader(io.StringIO(answer.text)))


def _assert_text_only(page: str) -> None:
    for hostile in HOSTILE_MARKS:
        assert hostile not in page
    assert not re.search(r"""href=["']?\s*javascript:""", page, re.I)
    assert re.findall(r"<script[^>]*>", page) == ['<script src="/static/app.js" defer>']
    assert " style=" not in page


def test_every_new_page_answers_html_json_and_csv_safely(
    client: TestClient, known: dict[str, str]
) -> None:
    for path in pages(known):
        page = client.get(path)
        assert page.status_code == 200, (path, page.text)
        assert page.headers["content-type"].startswith("text/html")
        assert "default-src 'none'" in page.headers["content-security-policy"]
        _assert_text_only(page.text)
        document = client.get(_json_url(path)).json()
        assert document["schema"] == 1
        assert client.get(path, headers={"Accept": "application/json"}).json() == document
        rows = _csv_rows(client, path)
        assert len(rows[0]) >= 5  # a header
        assert not any(cell.startswith(("=", "+", "@")) for row in rows for cell in row)


def test_the_overview_shows_clusters_flaky_broken_and_the_classification_rate(
    client: TestClient, known: dict[str, str]
) -> None:
    triage = client.get("/index.json").json()["triage"]
    assert triage["triage_runs"] == [1, 2, 3, 4, 5, 6, 7]
    clusters = {c["id"]: c for c in triage["clusters"]}
    hostile = clusters[known["hostile_cluster"]]
    assert hostile["failures"] == 5 * 7  # five hostile ids in seven runs
    assert hostile["rule"] == known["rule"]
    assert hostile["bug"] == HOSTILE_RULE_BUG
    assert sum(hostile["trend"]) == 35
    flip = clusters[known["flip_cluster"]]
    assert flip["failures"] == 4
    assert flip["rule"] is None
    assert [bug["id"] for bug in flip["bugs"]] == [known["flip_bug"]]
    assert flip["bugs"][0]["title"] == HOSTILE_TITLE
    assert triage["classification"] == {
        "failures": 56,
        "explained": 49,  # the rule explains the hostile, huge and binary clusters
        "unexplained": 7,
        "rate": 49 / 56,
        "clusters": 5,
        "unexplained_clusters": 2,
        "rules": 1,
    }
    fixed_cluster = next(c["id"] for c in triage["clusters"] if c["key"].endswith(": fixed"))
    assert [c["id"] for c in triage["unexplained"]] == [known["flip_cluster"], fixed_cluster]
    broken = {verdict["id"] for verdict in triage["broken"]}
    assert broken == {FLIP, *XSS_IDS, HUGE_ID, BINARY_ID}
    assert triage["flaky"] == []  # no commit both passed and failed here
    page = client.get("/").text
    assert "87.5%</span> classification rate" in page
    assert f'href="/clusters/{known["flip_cluster"]}"' in page
    assert f'href="/bugs/{known["flip_bug"]}"' in page
    assert "&lt;script&gt;window.__xss=7&lt;/script&gt; flip breaks" in page
    assert HOSTILE_RULE_BUG in page  # as text: a javascript: reference is never a link
    assert page.count('<svg class="spark"') >= 5
    _assert_text_only(page)


def test_the_overview_triage_follows_its_filters(
    client: TestClient, repo: ReadOnlyRepository, known: dict[str, str]
) -> None:
    unit = client.get("/index.json?branch=main&job=unit").json()["triage"]
    assert unit["triage_runs"] == [1, 3, 5, 6]
    flip = next(c for c in unit["clusters"] if c["id"] == known["flip_cluster"])
    assert flip["failures"] == 2  # runs 5 and 6
    fixed = [c for c in unit["clusters"] if c["key"].endswith("AssertionError: fixed")]
    assert fixed[0]["failures"] == 2  # runs 1 and 3
    assert unit["classification"]["failures"] == 4 * 8  # 7 hostile, and fixed or flip
    later = TestClient(
        create_app(repo, now_ns=lambda: NOW + 29 * 86_400 * 10**9), base_url="http://127.0.0.1"
    )
    empty = later.get("/index.json?window=7d").json()["triage"]
    assert empty["clusters"] == []
    assert empty["classification"]["rate"] is None
    assert '<p class="summary"><span class="rate-big">-</span>' in later.get("/?window=7d").text


def test_the_rules_the_dashboard_is_given_replace_the_repository_copy(
    repo: ReadOnlyRepository,
) -> None:
    app = create_app(repo, now_ns=lambda: NOW, triage=TriageSource(rules=[]))
    client = TestClient(app, base_url="http://127.0.0.1")
    classification = client.get("/index.json").json()["triage"]["classification"]
    assert classification["rules"] == 0
    assert classification["explained"] == 0
    assert classification["unexplained_clusters"] == 5


def test_the_cluster_list_ranks_every_cluster_and_exports_it(
    client: TestClient, known: dict[str, str]
) -> None:
    document = client.get("/clusters.json").json()
    assert [c["failures"] for c in document["clusters"]] == [35, 7, 7, 4, 3]
    assert document["failures"] == 56
    only_main = client.get("/clusters.json?branch=main").json()
    assert only_main["runs"] == [1, 2, 3, 4, 5, 6]
    assert sum(c["failures"] for c in only_main["clusters"]) == 56 - 8
    rows = _csv_rows(client, "/clusters")
    assert rows[0][:3] == ["id", "state", "failures"]
    flip_row = next(row for row in rows if row[0] == known["flip_cluster"])
    assert flip_row[2] == "4"
    assert flip_row[-1] == known["flip_bug"]
    page = client.get("/clusters?branch=main").text
    assert '<option value="main" selected>' in page
    assert 'href="/clusters.csv?branch=main"' in page
    assert client.get("/clusters?window=fortnight").status_code == 400


def test_the_cluster_page_shows_impact_traceback_tests_runs_rule_and_bugs(
    client: TestClient, known: dict[str, str]
) -> None:
    flip = known["flip_cluster"]
    page = client.get(f"/clusters/{flip}").text
    assert "AssertionError: flip" in page  # the representative traceback
    assert 'href="/test?id=pkg.test_a.T.test_flip"' in page
    for run in (4, 5, 6, 7):
        assert f'href="/runs/{run}"' in page
    by_run = page.split('aria-label="failures per run')[1].split("</svg>")[0]
    assert by_run.count('<rect class="fail"') == 4  # runs 4 to 7, one failure each
    assert "run 5: 1 failures" in by_run
    assert f'href="/bugs/{known["flip_bug"]}"' in page
    assert "no known-bug rule explains it" in page
    document = client.get(f"/clusters/{flip}.json").json()
    assert document["failures"] == 4
    assert document["tests"] == [{"id": FLIP, "failures": 4}]
    assert [run["id"] for run in document["runs"]] == [7, 6, 5, 4]
    assert document["examples"][0]["test"] == FLIP
    assert [bug["id"] for bug in document["bugs"]] == [known["flip_bug"]]
    rows = _csv_rows(client, f"/clusters/{flip}")
    assert rows[0] == ["run", "seq", "test", "status", "run_started_ns"]
    assert [row[0] for row in rows[1:]] == ["7", "6", "5", "4"]
    hostile = client.get(f"/clusters/{known['hostile_cluster']}").text
    assert "&lt;script&gt;window.__xss=5&lt;/script&gt;" in hostile  # the traceback, as text
    assert f"<code>{known['rule']}</code>" in hostile
    assert HOSTILE_RULE_BUG in hostile
    _assert_text_only(hostile)
    rule = client.get(f"/clusters/{known['hostile_cluster']}.json").json()["rule_detail"]
    assert rule["where"] == 'test ~ "^hostile\\."'


def test_an_unknown_or_malformed_cluster_is_a_clear_error(client: TestClient) -> None:
    missing = client.get("/clusters/0123456789abcdef")
    assert missing.status_code == 404
    assert "there is no failure cluster &#39;0123456789abcdef&#39;" in missing.text
    assert client.get("/clusters/0123456789abcdef.json").json()["error"].startswith("there is no")
    bad = client.get("/clusters/%3Cscript%3E")
    assert bad.status_code == 400
    assert "<script>" not in bad.text


def test_the_bug_list_filters_and_exports(client: TestClient, known: dict[str, str]) -> None:
    document = client.get("/bugs.json").json()
    assert {bug["id"] for bug in document["bugs"]} == {known["flip_bug"], known["huge_bug"]}
    fixed = client.get("/bugs.json?status=fixed").json()["bugs"]
    assert [bug["id"] for bug in fixed] == [known["huge_bug"]]
    active = client.get("/bugs.json?status=active").json()["bugs"]
    assert [bug["id"] for bug in active] == [known["flip_bug"]]
    assert [b["id"] for b in client.get("/bugs.json?q=FLOODS").json()["bugs"]] == [
        known["huge_bug"]
    ]
    tagged = client.get("/bugs.json?tag=regression").json()["bugs"]
    assert [bug["id"] for bug in tagged] == [known["flip_bug"]]
    assert client.get("/bugs?status=sleeping").status_code == 400
    page = client.get("/bugs").text
    assert "&lt;script&gt;window.__xss=7&lt;/script&gt; flip breaks" in page
    _assert_text_only(page)
    rows = _csv_rows(client, "/bugs")
    flip = next(row for row in rows if row[0] == known["flip_bug"])
    assert flip[4] == HOSTILE_TITLE
    assert f"cluster:{known['flip_cluster']}" in flip[7]


def test_the_bug_page_shows_its_timeline_links_and_evidence(
    client: TestClient, known: dict[str, str]
) -> None:
    bug = known["flip_bug"]
    page = client.get(f"/bugs/{bug[:6]}")  # any unique prefix
    assert page.status_code == 200
    text = page.text
    assert "&lt;script&gt;window.__xss=7&lt;/script&gt; flip breaks" in text
    assert "&#34;&gt;&lt;img src=x onerror=window.__xss=8&gt;" in text
    assert "&lt;b&gt;mallory&lt;/b&gt;" in text
    assert f'href="/clusters/{known["flip_cluster"]}"' in text
    assert 'href="/test?id=pkg.test_a.T.test_flip"' in text
    assert "4 failure(s) in 4 run(s)" in text  # the cluster's live evidence
    assert "in-progress" in text
    _assert_text_only(text)
    document = client.get(f"/bugs/{bug}.json").json()
    assert document["bug"]["id"] == bug
    assert document["bug"]["title"] == HOSTILE_TITLE
    assert document["bug"]["status"] == "in-progress"
    assert document["bug"]["comments"][0]["text"] == HOSTILE_COMMENT
    assert [item["summary"] for item in document["timeline"]] == [
        f"opened: {HOSTILE_TITLE}",
        "tagged regression",
        "linked",
        "linked",
        "commented",
        "status: in-progress",
    ]
    assert document["timeline"][0]["author"] == HOSTILE_AUTHOR
    evidence = {item["kind"]: item for item in document["evidence"]}
    assert evidence["cluster"]["failures"] == 4
    assert evidence["test"]["last_failed_run"] == 7
    rows = _csv_rows(client, f"/bugs/{bug}")
    assert rows[0] == ["event", "wall_ns", "author", "kind", "summary", "text"]
    assert len(rows) == 1 + 6


def test_a_hostile_link_target_is_text_and_a_safe_link(
    client: TestClient, known: dict[str, str]
) -> None:
    page = client.get(f"/bugs/{known['huge_bug']}").text
    assert "&#34;&gt;&lt;script&gt;window.__xss=11&lt;/script&gt;" in page
    assert 'href="/clusters/%22%3E%3Cscript%3Ewindow.__xss%3D11%3C%2Fscript%3E"' in page
    assert "no stored failure is in this cluster" in page  # its evidence
    _assert_text_only(page)
    document = client.get(f"/bugs/{known['huge_bug']}.json").json()
    assert {"kind": "cluster", "target": HOSTILE_LINK} in document["bug"]["links"]


def test_an_unknown_bug_is_a_404(client: TestClient) -> None:
    assert client.get("/bugs/ffffffff").status_code == 404
    missing = client.get("/bugs/%3Cimg%20src%3Dx%3E.json")
    assert missing.status_code == 404
    assert "is not a bug id" in missing.json()["error"]


def test_run_and_test_pages_name_each_failures_cluster_and_known_bugs(
    client: TestClient, known: dict[str, str]
) -> None:
    document = client.get("/runs/6.json").json()
    notes = {failure["id"]: failure["cluster"] for failure in document["failures"]}
    assert notes[FLIP]["cluster"] == known["flip_cluster"]
    assert [bug["id"] for bug in notes[FLIP]["bugs"]] == [known["flip_bug"]]
    assert notes[XSS_IDS[0]]["rule"] == known["rule"]
    assert [bug["id"] for bug in notes[HUGE_ID]["bugs"]] == [known["huge_bug"]]  # by its test
    page = client.get("/runs/6").text
    assert 'id="clusters"' in page
    assert f'href="/clusters/{known["flip_cluster"]}"' in page
    assert f'href="/bugs/{known["huge_bug"]}"' in page
    test = client.get("/test.json", params={"id": FLIP}).json()
    assert test["clusters"] == [
        {"cluster": known["flip_cluster"], "key": test["clusters"][0]["key"], "failures": 4,
         "newest_run": 7}
    ]  # fmt: skip
    assert [bug["id"] for bug in test["bugs"]] == [known["flip_bug"]]
    assert (
        f'href="/clusters/{known["flip_cluster"]}"' in client.get("/test", params={"id": FLIP}).text
    )


def _record(test_id: str, status: Status, start: int) -> TestRecord:
    attachments: tuple[Attachment, ...] = ()
    if status is Status.FAIL:
        text = b"Traceback (most recent call last):\n  File x, in t\nAssertionError: racy\n"
        attachments = (Attachment("traceback", text, "text/plain"),)
    return TestRecord(test_id, status, "0", start, start + 1000, frozenset(), attachments)


def test_a_test_that_passed_and_failed_on_one_commit_is_flaky(tmp_path: Path) -> None:
    url = str(tmp_path / "flaky.sqlite")
    store = sign_failures(open_store(url))
    try:
        for n, status in enumerate([Status.SUCCESS, Status.FAIL, Status.SUCCESS, Status.FAIL]):
            start = T0 + n * 3600 * NS_PER_SECOND
            meta = RunMetadata(started_ns=start, git_branch="main", git_commit="ab" * 20)
            store.write_run(
                [_record("pkg.t.racy", status, start), _record("pkg.t.ok", Status.SUCCESS, start)],
                meta,
            )
    finally:
        store.close()
    repo = ReadOnlyRepository(open_store(url, create=False))
    try:
        client = TestClient(create_app(repo, now_ns=lambda: NOW), base_url="http://127.0.0.1")
        triage = client.get("/index.json").json()["triage"]
        assert [verdict["id"] for verdict in triage["flaky"]] == ["pkg.t.racy"]
        assert triage["flaky"][0]["evidence"][0]["commit"] == "ab" * 20
        page = client.get("/").text
        assert "Flaky tests (1)" in page
        assert "passed in runs 1, 3 and failed in runs 2, 4" in page
        assert client.get("/bugs").status_code == 200  # no bugs yet
        assert "No bugs yet" in client.get("/bugs").text
        # The test's own page gives the verdict and its reason; a steady test's none.
        shown = client.get("/test.json", params={"id": "pkg.t.racy"}).json()["verdict"]
        assert shown["verdict"] == "flaky"
        assert shown["reasons"] == [
            f"passed in runs 1, 3 and failed in runs 2, 4 on commit {'ab' * 6}, ? on ?"
        ]  # no Python version or platform recorded: "?"
        html = client.get("/test", params={"id": "pkg.t.racy"}).text
        assert "FLAKY</strong> over the executions shown: passed in runs 1, 3" in html
        steady = client.get("/test.json", params={"id": "pkg.t.ok"}).json()
        assert steady["verdict"] is None
        assert "Neither flaky nor broken" in client.get("/test", params={"id": "pkg.t.ok"}).text
    finally:
        repo.close()


def test_a_cluster_page_takes_a_unique_prefix_of_its_id(
    client: TestClient, known: dict[str, str], tmp_path: Path
) -> None:
    flip = known["flip_cluster"]
    document = client.get(f"/clusters/{flip[:6]}.json").json()
    assert document["cluster"] == flip
    assert document["failures"] == 4
    assert "AssertionError: flip" in client.get(f"/clusters/{flip[:4]}").text
    # Two clusters whose ids share a prefix: the prefix is a clear error naming both.
    from proctor.triage.signature import ALGORITHM
    from tests.triage.history import fault, store_run

    url = str(tmp_path / "repo")
    with open_store(url, create=True) as store:
        store_run(store, [fault("t_a", "one"), fault("t_b", "two", error="TypeError: no")], day=0)
        digests = sorted({row.digest for row in store.failures([1], algorithm=ALGORITHM)})
        store.set_clusters(
            ALGORITHM, {digests[0]: "abcd" + "0" * 12, digests[1]: "abcd" + "1" * 12}
        )
    readonly = ReadOnlyRepository(open_store(url, create=False))
    try:
        other = TestClient(
            create_app(readonly, now_ns=lambda: NOW), base_url="http://127.0.0.1:8765"
        )
        ambiguous = other.get("/clusters/abcd.json")
        assert ambiguous.status_code == 400
        assert "ambiguous" in ambiguous.json()["error"]
        assert "abcd" + "0" * 12 in ambiguous.json()["error"]
        assert "abcd" + "1" * 12 in ambiguous.json()["error"]
        assert other.get("/clusters/abcd1.json").json()["cluster"] == "abcd" + "1" * 12
        assert other.get("/clusters/ffff").status_code == 404
    finally:
        readonly.close()
