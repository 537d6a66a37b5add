"""``proctor ui`` as a command: a real server process, and its errors."""

from __future__ import annotations

import socket
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.cli.invoke import invoke
from tests.web.server import serve


def _get(url: str, host: str | None = None) -> tuple[int, dict[str, str], str]:
    request = urllib.request.Request(url)
    if host is not None:
        request.add_header("Host", host)
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return answer.status, dict(answer.headers), answer.read().decode()
    except urllib.error.HTTPError as error:
        with error:
            return error.code, dict(error.headers), error.read().decode()


@pytest.mark.slow
def test_the_server_answers_on_loopback_and_refuses_other_hosts(repository: str) -> None:
    with serve(repository) as url:
        status, headers, body = _get(url + "/runs/6")
        assert status == 200
        assert "script-src 'self'" in headers["content-security-policy"]
        assert "AssertionError: flip" in body
        status, _, body = _get(url + "/", host="rebound.example")
        assert status == 421
        status, _, _ = _get(url + "/index.json", host="localhost")
        assert status == 200


def test_ui_without_a_repository_says_how_to_make_one(tmp_path: Path) -> None:
    done = invoke("ui", "--repository", str(tmp_path / "none"), "--port", "0")
    assert done.exit_code == 2
    assert "there is no repository" in done.stderr
    assert not (tmp_path / "none").exists()


def test_ui_on_a_port_in_use_says_so(repository: str) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        done = invoke("ui", "--repository", repository, "--port", str(port))
    assert done.exit_code == 2
    assert f"cannot listen on 127.0.0.1 port {port}" in done.stderr
    assert "choose another --port" in done.stderr
    assert "Traceback" not in done.stderr


def test_ui_and_report_are_listed() -> None:
    listing = invoke("--help").stdout
    assert "ui " in listing
    assert "report " in listing


def test_the_dashboard_opens_the_repository_read_only_at_the_database(repository: str) -> None:
    from proctor.store.errors import StoreError
    from proctor.web.repository import open_readonly

    repo = open_readonly(repository)
    try:
        assert repo.latest_run() is not None  # it reads
        store = repo._store  # below the read-only wrapper: the database itself refuses
        with pytest.raises(StoreError, match="read-only"):
            store.begin_run().finish()
    finally:
        repo.close()
