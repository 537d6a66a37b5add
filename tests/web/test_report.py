"""``proctor report``: one self-contained file, escaped, within its size budget."""

from __future__ import annotations

import base64
import hashlib
import html as html_module
import re
from pathlib import Path

import pytest

from proctor.wire import v2
from proctor.wire.event import NS_PER_SECOND, Event, Status
from tests.cli.invoke import invoke
from tests.web.project import HUGE_BYTES, T0, result, traceback


def _report(repository: str, path: Path, *args: str) -> str:
    done = invoke("report", "--repository", repository, "-o", str(path), *args)
    assert done.exit_code == 0, done.stderr
    assert f"Wrote {path}" in done.stdout
    return path.read_text("utf-8")


def test_the_report_is_one_file_that_asks_nothing_of_the_network(
    repository: str, tmp_path: Path
) -> None:
    html = _report(repository, tmp_path / "report.html", "6")
    assert "<script" not in html
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:|//|/static)""", html)
    assert "@import" not in html
    assert "url(" not in html
    csp = re.search(r'<meta http-equiv="Content-Security-Policy" content="([^"]+)">', html)
    assert csp is not None
    style = re.search(r"<style>(.*?)</style>", html, re.S)
    assert style is not None
    digest = base64.b64encode(hashlib.sha256(style.group(1).encode()).digest()).decode()
    policy = html_module.unescape(csp.group(1))
    assert policy.startswith(f"default-src 'none'; style-src 'sha256-{digest}'")
    assert "script-src" not in policy  # default-src 'none': no script at all


def test_the_report_holds_the_run_its_comparison_trend_and_slowest(
    repository: str, tmp_path: Path
) -> None:
    html = _report(repository, tmp_path / "report.html", "6")
    assert "<h1>Run 6" in html
    assert "AssertionError: flip" in html
    comparison = html.split('id="comparison"')[1].split('id="trend"')[0]
    assert "Run 5" in comparison
    assert "Added (1)" in comparison
    assert "pkg.test_a.T.test_new" in comparison
    assert "Removed (1)" in comparison
    assert "pkg.test_a.T.test_gone" in comparison
    assert "The last 6 runs of the branch" in html
    assert html.split('id="slowest"')[1].index("test_slow") < html.split('id="slowest"')[1].index(
        "test_ok_0"
    )
    assert "pkg.test_a.T.test_ok_9" in html.split('id="results"')[1]


def test_the_report_escapes_hostile_text_and_cuts_big_output(
    repository: str, tmp_path: Path
) -> None:
    html = _report(repository, tmp_path / "report.html", "7")
    for hostile in ("<script>window.__xss", "<img src=x", 'onmouseover="window', "\x1b", "\x07"):
        assert hostile not in html
    assert "&lt;script&gt;window.__xss=6&lt;/script&gt;" in html  # the branch name
    assert f"{HUGE_BYTES - 64 * 1024} more characters left out of the report" in html
    assert "Binary content (16384 bytes) left out of the report" in html
    # The same hostile traceback under five ids is written once.
    assert html.count("&lt;script&gt;window.__xss=5&lt;/script&gt;") == 1
    assert html.count('the same as in <a href="#f') == 4


def test_the_report_names_each_failures_cluster_and_known_bugs(
    repository: str, known: dict[str, str], tmp_path: Path
) -> None:
    html = _report(repository, tmp_path / "report.html", "6")
    clusters = html.split('id="clusters"')[1].split('id="failures"')[0]
    assert known["flip_cluster"] in clusters
    assert known["hostile_cluster"] in clusters
    failures = html.split('id="failures"')[1].split('id="comparison"')[0]
    flip = failures.split("pkg.test_a.T.test_flip")[1].split("</article>")[0]
    assert f"Cluster <code>{known['flip_cluster']}</code>" in flip
    assert f"bug {known['flip_bug'][:7]}" in flip  # its bug, by its short id
    assert "&lt;script&gt;window.__xss=7&lt;/script&gt; flip breaks" in flip
    assert f"rule <code>{known['rule']}</code>" in failures
    assert "javascript://%0awindow.__xss=10" in failures  # the rule's bug, as text
    assert "<script>window.__xss" not in html
    assert 'href="/' not in html  # nothing links to a server: the file is alone
    assert not re.search(r"""href=["']?javascript:""", html)


def test_report_without_a_repository_says_how_to_make_one(tmp_path: Path) -> None:
    done = invoke("report", "--repository", str(tmp_path / "none"), "-o", str(tmp_path / "r.html"))
    assert done.exit_code == 2
    assert "there is no repository" in done.stderr
    assert not (tmp_path / "r.html").exists()
    assert not (tmp_path / "none").exists()


def test_report_names_an_unknown_run(repository: str, tmp_path: Path) -> None:
    done = invoke("report", "--repository", repository, "-o", str(tmp_path / "r.html"), "99")
    assert done.exit_code == 2
    assert "there is no run 99" in done.stderr


def test_report_that_cannot_be_written_says_where(repository: str, tmp_path: Path) -> None:
    done = invoke("report", "--repository", repository, "-o", str(tmp_path / "no" / "r.html"))
    assert done.exit_code == 2
    assert "cannot write" in done.stderr
    assert "r.html" in done.stderr
    assert "Traceback" not in done.stderr


def _big_stream(count: int, failures: int) -> bytes:
    events: list[Event] = []
    now = T0
    for n in range(count):
        test_id = f"pkg.module_{n // 100:03d}.TestCase.test_something_{n:06d}"
        status = Status.FAIL if n % (count // failures) == 0 else Status.SUCCESS
        attachments = [traceback(f"case {n % 7}")] if status is Status.FAIL else []
        if status is Status.SUCCESS and n % 10 == 0:
            attachments.append(("stdout", b"some output\n" * 20, "text/plain"))
        events += result(test_id, status, now, 0.004, attachments, worker=n % 4)
        now += 5 * NS_PER_SECOND // 1000
    return v2.encode_many(events)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("results", "runs", "budget"),
    [(10_000, 2, 5 * 1024 * 1024), (100_000, 1, 30 * 1024 * 1024)],
    ids=["10k-in-5MB", "100k-in-30MB"],
)
def test_large_runs_fit_their_size_budget(
    tmp_path: Path, results: int, runs: int, budget: int
) -> None:
    repository = str(tmp_path / "repo")
    failures = results // 20
    for index in range(runs):
        path = tmp_path / f"big{index}.subunit"
        path.write_bytes(_big_stream(results, failures))
        done = invoke(
            "load", "--repository", repository, "--branch", "main", "--exit-zero", str(path)
        )
        assert done.exit_code == 0, done.stderr
    out = tmp_path / "report.html"
    html = _report(repository, out)
    assert out.stat().st_size <= budget
    assert html.count('<article class="failure"') == failures
    assert html.count('<tr class="row-pass">') == results - failures
    # Seven distinct tracebacks among the failures: each written once.
    assert html.count("AssertionError: case 3") == 1
