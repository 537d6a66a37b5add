"""The dashboard's routes through Starlette's TestClient: every page as HTML,
JSON and CSV, the filters, the comparison, the test page, and the guard."""

from __future__ import annotations

import csv
import io
import re

import pytest
from starlette.testclient import TestClient

from proctor.web.app import create_app
from proctor.web.repository import ReadOnlyRepository
from tests.web.conftest import NOW
from tests.web.project import BINARY_ID, HOSTILE_BRANCH, HUGE_BYTES, HUGE_ID, XSS_IDS

PAGES = [
    "/",
    "/runs",
    "/runs?page=1&branch=main&window=1d",
    "/runs/6",
    "/runs/1",
    "/compare",
    "/compare?base=1&head=6",
    "/test?id=pkg.test_a.T.test_flip",
    "/search?q=test_",
    "/search?q=",
]


@pytest.mark.parametrize("path", PAGES)
def test_every_page_answers_html_json_with_the_security_headers(
    client: TestClient, path: str
) -> None:
    page = client.get(path)
    assert page.status_code == 200, page.text
    assert page.headers["content-type"].startswith("text/html")
    csp = page.headers["content-security-policy"]
    assert "script-src 'self'" in csp
    assert "default-src 'none'" in csp
    assert "frame-ancestors 'none'" in csp
    assert "'unsafe-inline'" not in csp
    assert page.headers["x-content-type-options"] == "nosniff"
    assert "<script>" not in page.text  # only <script src=...> of our own
    assert re.findall(r"<script[^>]*>", page.text) in ([], ['<script src="/static/app.js" defer>'])
    assert " style=" not in page.text  # a strict CSP forbids style attributes

    stem, _, query = path.partition("?")
    as_json = client.get(
        ("/index" if stem == "/" else stem) + ".json" + (f"?{query}" if query else "")
    )
    assert as_json.status_code == 200
    document = as_json.json()
    assert document["schema"] == 1
    by_accept = client.get(path, headers={"Accept": "application/json"})
    assert by_accept.json() == document


def test_the_static_files_are_served_and_small(client: TestClient) -> None:
    total = 0
    for name in ("app.css", "app.js", "favicon.svg"):
        answer = client.get(f"/static/{name}")
        assert answer.status_code == 200
        total += len(answer.content)
    assert total < 60 * 1024


def test_requests_naming_another_host_are_refused(client: TestClient) -> None:
    rebound = client.get("/", headers={"Host": "attacker.example:8765"})
    assert rebound.status_code == 421
    assert "127.0.0.1" in rebound.text
    assert client.get("/", headers={"Host": "localhost:8765"}).status_code == 200
    assert client.get("/", headers={"Host": "[::1]:8765"}).status_code == 200
    assert client.get("/", headers={"Host": ""}).status_code == 421


def test_a_host_allowed_by_name_is_answered(repo: ReadOnlyRepository) -> None:
    app = create_app(repo, allowed_hosts=["ci-box"])
    assert TestClient(app, base_url="http://ci-box:8765").get("/").status_code == 200
    assert TestClient(app, base_url="http://127.0.0.1").get("/").status_code == 421


def test_the_dashboard_only_reads(client: TestClient) -> None:
    for method in ("POST", "PUT", "DELETE", "PATCH"):
        answer = client.request(method, "/runs/6")
        assert answer.status_code == 405
        assert answer.headers["allow"] == "GET, HEAD"


def test_the_overview_filters_by_branch_job_and_window(client: TestClient) -> None:
    every = client.get("/index.json").json()
    assert [run["id"] for run in every["runs"]] == [1, 2, 3, 4, 5, 6, 7]  # oldest first
    assert every["summary"]["runs"] == 7
    main = client.get("/index.json?branch=main").json()
    assert [run["id"] for run in main["runs"]] == [1, 2, 3, 4, 5, 6]
    unit = client.get("/index.json?branch=main&job=unit").json()
    assert [run["id"] for run in unit["runs"]] == [1, 3, 5, 6]
    # NOW is an hour after run 7 began; runs begin an hour apart.
    recent = client.get("/index.json?window=1d").json()
    assert len(recent["runs"]) == 7
    assert client.get("/index.json?job=nothing").json()["runs"] == []
    run4 = next(run for run in every["runs"] if run["id"] == 4)
    assert run4["failed"] == 8  # flip, five hostile ids, huge, binary
    assert run4["failure_rate"] == pytest.approx(8 / run4["ran"])
    hostile = client.get("/index.json", params={"branch": HOSTILE_BRANCH}).json()
    assert [run["id"] for run in hostile["runs"]] == [7]


def test_the_window_counts_back_from_now(repo: ReadOnlyRepository) -> None:
    later = TestClient(
        create_app(repo, now_ns=lambda: NOW + 29 * 86_400 * 10**9), base_url="http://127.0.0.1"
    )
    assert later.get("/index.json?window=7d").json()["runs"] == []
    assert len(later.get("/index.json?window=30d").json()["runs"]) == 7


def test_a_bad_filter_is_a_400_saying_what_to_do(client: TestClient) -> None:
    page = client.get("/runs?window=fortnight")
    assert page.status_code == 400
    assert "is not a time window: use one of 1d, 7d" in page.text
    assert client.get("/runs.json?page=0").json()["error"].startswith("page='0'")
    assert client.get("/compare?base=x").status_code == 400
    assert client.get("/test?id=pkg.test_a.T.test_flip&n=5000").status_code == 400


def test_the_filters_are_kept_in_the_page_links(client: TestClient) -> None:
    page = client.get("/?branch=main&job=unit&window=30d")
    assert 'href="/runs?branch=main&amp;job=unit&amp;window=30d"' in page.text
    assert '<option value="main" selected>' in page.text


def test_runs_are_paginated_and_exported_whole(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    import proctor.web.views as views

    monkeypatch.setattr(views, "PAGE_SIZE", 3)
    first = client.get("/runs.json").json()
    assert [run["id"] for run in first["runs"]] == [7, 6, 5]
    assert first["more"] is True
    third = client.get("/runs.json?page=3").json()
    assert [run["id"] for run in third["runs"]] == [1]
    assert third["more"] is False
    page = client.get("/runs?page=2")
    assert 'rel="next" href="/runs?page=3"' in page.text
    assert 'rel="prev" href="/runs"' in page.text
    rows = list(csv.reader(io.StringIO(client.get("/runs.csv").text)))
    assert rows[0][:3] == ["id", "started_ns", "state"]
    assert [row[0] for row in rows[1:]] == ["7", "6", "5", "4", "3", "2", "1"]
    assert first["runs"][0]["git"]["branch"] == HOSTILE_BRANCH


def test_the_run_page_shows_failures_in_full_and_the_slowest(client: TestClient) -> None:
    page = client.get("/runs/6")
    text = page.text
    assert "AssertionError: flip" in text
    assert "test_fixed" not in text.split('id="slowest"')[0]  # it passed in run 6
    slowest = text.split('id="slowest"')[1]
    assert slowest.index("test_slow") < slowest.index("test_flip")
    assert "no network" in text  # the skip reason
    document = client.get("/runs/6.json").json()
    assert document["run"]["id"] == 6
    assert document["previous"] == 5
    failed = {failure["id"] for failure in document["failures"]}
    assert failed == {"pkg.test_a.T.test_flip", *XSS_IDS, HUGE_ID, BINARY_ID}
    assert document["slowest"][0] == {"id": "pkg.test_a.T.test_slow", "duration_seconds": 2.0}
    assert 'href="/compare?base=5&amp;head=6"' in text
    rows = list(csv.reader(io.StringIO(client.get("/runs/6.csv").text)))
    assert rows[0] == ["id", "status", "duration_seconds", "worker", "start_ns"]
    assert len(rows) == 1 + document["run"]["counts"]["ran"]


def test_an_unknown_run_or_test_is_a_404_with_suggestions(client: TestClient) -> None:
    assert client.get("/runs/99").status_code == 404
    assert client.get("/runs/99.json").json()["error"].startswith("there is no run 99")
    missing = client.get("/test?id=test_flop")
    assert missing.status_code == 404
    missing = client.get("/test?id=pkg.test_a")
    assert "pkg.test_a.T.test_flip" in missing.text  # did you mean
    assert client.get("/no/such/page").status_code == 404


def test_the_comparison_lists_every_kind_of_change(client: TestClient) -> None:
    # Run 3 -> 4: flip starts failing, fixed is fixed.
    three_four = client.get("/compare.json?base=3&head=4").json()
    assert [c["id"] for c in three_four["new_failures"]] == ["pkg.test_a.T.test_flip"]
    assert [c["id"] for c in three_four["fixed"]] == ["pkg.test_a.T.test_fixed"]
    assert three_four["fixed"][0]["base_status"] == "fail"
    assert three_four["fixed"][0]["head_status"] == "success"
    assert sorted(c["id"] for c in three_four["still_failing"]) == sorted(
        [*XSS_IDS, HUGE_ID, BINARY_ID]
    )
    assert three_four["added"] == []
    assert three_four["removed"] == []
    # Run 5 -> 6: one test added, one removed, one ten times slower.
    five_six = client.get("/compare.json?base=5&head=6").json()
    assert [c["id"] for c in five_six["added"]] == ["pkg.test_a.T.test_new"]
    assert [c["id"] for c in five_six["removed"]] == ["pkg.test_a.T.test_gone"]
    assert [c["id"] for c in five_six["slower"]] == ["pkg.test_a.T.test_slow"]
    assert five_six["slower"][0]["base_seconds"] == pytest.approx(0.2)
    assert five_six["faster"] == []
    # Without a base: the previous run on the head's branch.
    default = client.get("/compare.json?head=6").json()
    assert default["base"]["id"] == 5
    rows = list(csv.reader(io.StringIO(client.get("/compare.csv?base=5&head=6").text)))
    assert ["added", "pkg.test_a.T.test_new", "", "success", "", "0.01"] in rows
    page = client.get("/compare?base=3&head=4").text
    assert '<option value="3" selected>' in page


def test_the_test_page_says_where_it_started_failing(client: TestClient) -> None:
    document = client.get("/test.json", params={"id": "pkg.test_a.T.test_flip"}).json()
    assert document["started_failing"] == {
        "run": 4,
        "commit": "c4" * 20,
        "branch": "main",
        "started_ns": document["executions"][3]["run_started_ns"],
        "streak": 4,
        "last_good_run": 3,
        "last_good_commit": "c3" * 20,
    }
    assert [e["run"] for e in document["executions"]] == [7, 6, 5, 4, 3, 2, 1]
    assert document["history"]["executions"] == 7
    page = client.get("/test", params={"id": "pkg.test_a.T.test_flip"}).text
    assert "Failing since run" in page
    assert 'href="/compare?base=3&amp;head=4"' in page
    assert page.count('<rect class="fail"') == 4
    assert page.count('<rect class="pass"') == 3
    fixed = client.get("/test.json", params={"id": "pkg.test_a.T.test_fixed"}).json()
    assert fixed["started_failing"] is None
    only_main = client.get(
        "/test.json", params={"id": "pkg.test_a.T.test_flip", "branch": "main", "n": "2"}
    ).json()
    assert [e["run"] for e in only_main["executions"]] == [6, 5]


def test_search_finds_ids_from_every_page(client: TestClient) -> None:
    assert 'action="/search"' in client.get("/runs/6").text
    found = client.get("/search.json?q=test_f").json()["tests"]
    assert found == ["pkg.test_a.T.test_fixed", "pkg.test_a.T.test_flip"]
    page = client.get("/search?q=test_f").text
    assert 'href="/test?id=pkg.test_a.T.test_flip"' in page


@pytest.mark.parametrize("path", ["/runs/6", "/compare?base=5&head=6", "/search?q=hostile", "/"])
def test_hostile_ids_and_output_are_text(client: TestClient, path: str) -> None:
    page = client.get(path).text
    for hostile in ("<script>window.__xss", "<img src=x", 'onmouseover="window', "\x1b", "\x07"):
        assert hostile not in page
    assert 'href="javascript:' not in page
    assert "href='javascript:" not in page
    if path == "/runs/6":
        assert "&lt;script&gt;window.__xss=1&lt;/script&gt;" in page
        # Colours and window titles are removed (as on a terminal); other controls shown.
        assert "RED" in page
        assert "retitled" not in page
        assert "\\r overwritten" in page
        assert "\\u202eevil" in page


def test_a_javascript_id_links_to_its_test_page_not_to_script(client: TestClient) -> None:
    page = client.get("/search?q=javascript").text
    assert 'href="/test?id=javascript%3Awindow.__xss%3D3"' in page


def test_huge_and_binary_attachments_are_cut_or_left_out(client: TestClient) -> None:
    page = client.get("/runs/6").text
    assert f"{HUGE_BYTES - 256 * 1024} more characters left out" in page
    assert "A" * (256 * 1024 + 1) not in page
    assert "Binary content (16384 bytes) not shown" in page
    document = client.get("/runs/6.json").json()
    binary = next(f for f in document["failures"] if f["id"] == BINARY_ID)
    assert binary["attachments"][0]["text"] is None
    assert binary["attachments"][0]["base64"]


def test_csv_cells_a_spreadsheet_would_run_are_quoted(client: TestClient) -> None:
    rows = list(csv.reader(io.StringIO(client.get("/runs/6.csv").text)))
    ids = [row[0] for row in rows]
    assert '\'=HYPERLINK("http://127.0.0.1:9/")' in ids
    assert not any(cell.startswith("=") for row in rows for cell in row)


def test_the_overview_draws_outcomes_rate_and_wall_time_per_run(client: TestClient) -> None:
    page = client.get("/?branch=main").text
    assert page.count('<g class="run">') == 6
    assert page.count('<circle class="rate-point"') == 6
    assert "<title>run 4: 36.36% failing (8 of 22)</title>" in page
    titles = re.findall(r"<title>(run \d+: [0-9.]+% failing \(\d+ of \d+\))</title>", page)
    assert len(titles) == 6
    assert page.count('<rect class="wall"') == 6
    assert 'href="/runs/4"' in page  # each mark links to its run
