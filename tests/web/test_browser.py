"""The dashboard and the report in a real Chromium, driven by Playwright.

A real ``proctor ui`` serves the repository the other tests use (filled by
``proctor load``, hostile ids and output included) on a free loopback port.
Every page must load with no console error (a Content-Security-Policy
violation is one) and no failed request; filters and the comparison are used
by clicking; hostile text must show as text and never run. Each test saves a
screenshot (in ``$PROCTOR_SCREENSHOTS`` when set, else a temporary directory).

Playwright never downloads a browser here: it drives Debian's Chromium.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.web.project import HOSTILE_BRANCH, XSS_IDS
from tests.web.server import serve

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]

pytestmark = pytest.mark.slow

sync_api = pytest.importorskip("playwright.sync_api")
if not os.path.exists(CHROMIUM):  # .ci/run installs it
    pytest.skip(f"no Chromium at {CHROMIUM} (apt-get install chromium)", allow_module_level=True)


@pytest.fixture(scope="module")
def server(repository: str) -> Iterator[str]:
    with serve(repository) as url:
        yield url


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        yield chromium
        chromium.close()


@pytest.fixture(scope="module")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    wanted = os.environ.get("PROCTOR_SCREENSHOTS")
    if wanted:
        Path(wanted).mkdir(parents=True, exist_ok=True)
        return Path(wanted)
    return tmp_path_factory.mktemp("screenshots")


class Watched:
    """A page with every console error, failed request and error response recorded."""

    def __init__(self, browser: Any, allowed_prefix: str) -> None:
        self.context = browser.new_context(viewport={"width": 1280, "height": 900})
        self.page = self.context.new_page()
        self.problems: list[str] = []
        self.requests: list[str] = []
        self.dialogs: list[str] = []
        page = self.page
        page.on(
            "console",
            lambda m: (
                self.problems.append(f"console {m.type}: {m.text}")
                if m.type in ("error", "warning")
                else None
            ),
        )
        page.on("pageerror", lambda e: self.problems.append(f"page error: {e}"))
        # A request cancelled because the page went on to another is no failure of the
        # server, nor is a cancelled favicon fetch (Chromium drops a page's icon fetch
        # when it already has that icon, at any time); every other failed request is,
        # the favicon's too when it fails any other way (a 404 is a response, below).
        self.navigations = 0
        self.started: dict[Any, int] = {}

        def navigated(frame: Any) -> None:
            if frame == page.main_frame:
                self.navigations += 1

        def failed(request: Any) -> None:
            cancelled = "ERR_ABORTED" in (request.failure or "")
            if cancelled and (
                self.started.get(request, -1) < self.navigations
                or request.url.endswith("/static/favicon.svg")
            ):
                return
            self.problems.append(f"failed: {request.url} {request.failure}")

        page.on("framenavigated", navigated)
        page.on("request", lambda r: self.started.setdefault(r, self.navigations))
        page.on("requestfailed", failed)
        page.on(
            "response",
            lambda r: (
                self.problems.append(f"HTTP {r.status}: {r.url}") if r.status >= 400 else None
            ),
        )
        page.on("request", lambda r: self.requests.append(r.url))

        def dialog(d: Any) -> None:
            self.dialogs.append(d.message)
            d.dismiss()

        page.on("dialog", dialog)
        self.allowed_prefix = allowed_prefix

    def check(self) -> None:
        assert self.problems == []
        assert self.dialogs == []
        strangers = [url for url in self.requests if not url.startswith(self.allowed_prefix)]
        assert strangers == []
        assert self.page.evaluate("typeof window.__xss") == "undefined"

    def close(self) -> None:
        self.context.close()


@pytest.fixture
def watched(browser: Any, server: str) -> Iterator[Watched]:
    view = Watched(browser, server + "/")
    yield view
    view.close()


PAGES = {
    "overview": "/",
    "runs": "/runs",
    "run": "/runs/6",
    "compare": "/compare?base=3&head=6",
    "test": "/test?id=pkg.test_a.T.test_flip",
    "search": "/search?q=test_f",
    "hostile-run": "/runs/7",
    "not-found": "/runs/99",
    "clusters": "/clusters",
    "cluster": "/clusters/{flip_cluster}",
    "hostile-cluster": "/clusters/{hostile_cluster}",
    "bugs": "/bugs",
    "bug": "/bugs/{flip_bug}",
    "fixed-bug": "/bugs/{huge_bug}",
}
"""Page name -> path; ``{name}`` stands for an id :func:`add_known_bugs` wrote."""


@pytest.mark.parametrize("name", sorted(PAGES))
def test_every_page_loads_cleanly(
    watched: Watched, server: str, shots: Path, name: str, known: dict[str, str]
) -> None:
    answer = watched.page.goto(server + PAGES[name].format(**known))
    watched.page.wait_for_load_state("load")
    watched.page.screenshot(path=str(shots / f"page-{name}.png"), full_page=True)
    if name == "not-found":
        assert answer.status == 404
        watched.problems = [p for p in watched.problems if "/runs/99" not in p and "404" not in p]
    else:
        assert answer.status == 200
    watched.check()


def test_filters_work_by_clicking(watched: Watched, server: str, shots: Path) -> None:
    page = watched.page
    page.goto(server + "/")
    assert page.locator("svg.runs g.run").count() == 7
    with page.expect_navigation():
        page.select_option("select[name=branch]", "main")  # app.js submits on change
    assert "branch=main" in page.url
    assert page.locator("svg.runs g.run").count() == 6
    with page.expect_navigation():
        page.select_option("select[name=job]", "unit")
    assert "branch=main" in page.url
    assert "job=unit" in page.url
    assert page.locator("svg.runs g.run").count() == 4
    page.screenshot(path=str(shots / "filters.png"), full_page=True)
    # A bar of the chart is a link to its run.
    with page.expect_navigation():
        page.locator("svg.runs a").last.click()
    assert page.url.endswith("/runs/6")
    watched.check()


def test_the_comparison_works_by_clicking(watched: Watched, server: str, shots: Path) -> None:
    page = watched.page
    page.goto(server + "/runs/6")
    with page.expect_navigation():
        page.get_by_role("link", name="with the previous run on this branch (run 5)").click()
    assert page.url.endswith("/compare?base=5&head=6")
    assert page.locator("#added").get_by_text("pkg.test_a.T.test_new").is_visible()
    assert page.locator("#removed").get_by_text("pkg.test_a.T.test_gone").is_visible()
    assert page.locator("#slower").get_by_text("pkg.test_a.T.test_slow").is_visible()
    with page.expect_navigation():
        page.select_option("select[name=base]", "3")
    assert "base=3" in page.url
    assert "head=6" in page.url
    assert page.locator("#new_failures").get_by_text("pkg.test_a.T.test_flip").is_visible()
    assert page.locator("#fixed").get_by_text("pkg.test_a.T.test_fixed").is_visible()
    page.screenshot(path=str(shots / "compare.png"), full_page=True)
    # From the run page's own form too.
    page.goto(server + "/runs/4")
    page.select_option("form.compare select[name=base]", "2")
    with page.expect_navigation():
        page.get_by_role("button", name="Compare").click()
    assert "base=2" in page.url
    assert "head=4" in page.url
    watched.check()


def test_search_from_a_page_leads_to_the_test(watched: Watched, server: str, shots: Path) -> None:
    page = watched.page
    page.goto(server + "/runs/6")
    page.keyboard.press("/")  # app.js: focus the search box
    page.keyboard.type("test_fl")
    with page.expect_navigation():
        page.keyboard.press("Enter")
    with page.expect_navigation():
        page.get_by_role("link", name="pkg.test_a.T.test_flip").click()
    assert page.locator("p.verdict").inner_text().startswith("Failing since run 4")
    assert page.locator("svg.strip rect.fail").count() == 4
    page.screenshot(path=str(shots / "test-page.png"), full_page=True)
    watched.check()


def test_hostile_text_shows_as_text_and_never_runs(
    watched: Watched, server: str, shots: Path
) -> None:
    page = watched.page
    page.goto(server + "/runs/7")
    for hostile in XSS_IDS:
        assert page.locator("article.failure h3").filter(has_text=hostile).count() == 1
    assert page.get_by_text("<script>window.__xss=5</script>").count() >= 1
    assert page.locator("dl.meta").get_by_text(HOSTILE_BRANCH).is_visible()
    page.locator("article.failure").first.hover()
    for link in page.locator("a").all():
        href = link.get_attribute("href") or ""
        assert not href.lower().startswith("javascript:")
    page.screenshot(path=str(shots / "hostile.png"), full_page=True)
    page.goto(server + "/search?q=javascript")
    with page.expect_navigation():
        page.get_by_role("link", name="javascript:window.__xss=3").click()
    assert "/test?id=javascript" in page.url
    watched.check()


def test_triage_leads_from_the_overview_to_a_cluster_its_bug_and_its_test(
    watched: Watched, server: str, shots: Path, known: dict[str, str]
) -> None:
    page = watched.page
    page.goto(server + "/")
    assert page.locator("#unexplained .rate-big").inner_text() == "87.5%"
    assert page.locator("#triage svg.spark").count() == 5
    assert page.locator("#broken tbody tr").count() == 8
    with page.expect_navigation():
        page.select_option("select[name=job]", "unit")
    assert page.locator("#triage svg.spark").count() == 5  # every cluster failed in unit runs
    assert "job=unit" in page.url
    page.screenshot(path=str(shots / "overview-triage.png"), full_page=True)
    with page.expect_navigation():
        page.locator("#triage").get_by_role("link", name=known["flip_cluster"]).click()
    assert page.url.endswith(f"/clusters/{known['flip_cluster']}")
    assert page.locator("svg.counts rect.fail").count() >= 4
    assert page.get_by_text("AssertionError: flip").first.is_visible()
    page.screenshot(path=str(shots / "cluster.png"), full_page=True)
    with page.expect_navigation():
        page.get_by_role("link", name=f"bug {known['flip_bug'][:7]}").click()
    assert page.url.endswith(f"/bugs/{known['flip_bug']}")
    # The hostile title, comment and author show as text.
    assert page.locator("h1").inner_text().endswith("<script>window.__xss=7</script> flip breaks")
    assert page.get_by_text('"><img src=x onerror=window.__xss=8>', exact=False).count() == 1
    assert page.locator("ol.timeline li").count() == 6
    page.screenshot(path=str(shots / "bug.png"), full_page=True)
    with page.expect_navigation():
        page.locator("#links").get_by_role("link", name="pkg.test_a.T.test_flip").click()
    assert page.locator("#clusters").get_by_text(known["flip_cluster"]).is_visible()
    with page.expect_navigation():
        page.get_by_role("link", name="Bugs", exact=True).click()
    with page.expect_navigation():
        page.select_option("select[name=status]", "fixed")
    assert "status=fixed" in page.url
    assert page.locator("tbody tr").count() == 1
    page.screenshot(path=str(shots / "bugs-fixed.png"), full_page=True)
    with page.expect_navigation():
        page.get_by_role("link", name="Clusters", exact=True).click()
    assert page.locator("table.clusters tbody tr").count() == 5
    for link in page.locator("a").all():
        assert not (link.get_attribute("href") or "").lower().startswith("javascript:")
    watched.check()


def test_the_report_opens_from_disk_with_no_network(
    browser: Any, repository: str, tmp_path: Path, shots: Path
) -> None:
    out = tmp_path / "report.html"
    command = ["report", "7", "--repository", repository, "-o", str(out)]
    done = subprocess.run(
        [sys.executable, "-m", "proctor", *command],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    view = Watched(browser, out.as_uri())
    try:
        view.page.goto(out.as_uri())
        view.page.wait_for_load_state("load")
        assert view.page.locator("article.failure").count() == len(XSS_IDS) + 3
        color = view.page.evaluate(
            "getComputedStyle(document.querySelector('article.failure')).borderLeftStyle"
        )
        assert color == "solid"  # the inline stylesheet applied under the file's CSP
        # The long list renders when scrolled to (content-visibility: auto).
        view.page.locator("#results").scroll_into_view_if_needed()
        row = view.page.locator("#results tr.row-pass").filter(has_text="test_ok_3")
        assert row.is_visible()
        box = row.bounding_box()
        assert box is not None
        assert box["height"] > 0
        view.page.screenshot(path=str(shots / "report-results.png"))
        view.page.screenshot(path=str(shots / "report.png"), full_page=True)
        view.check()
        assert view.requests == [out.as_uri()]
    finally:
        view.close()
