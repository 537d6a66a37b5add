"""The ``proctor ui`` application: routes, JSON and CSV answers, and the guard.

Every page answers as HTML, as JSON (the same URL with ``.json``, or an
``Accept: application/json`` header) and, for lists, as CSV (``.csv``). The
guard (:class:`Guard`) comes first on every request: it refuses a ``Host``
header that does not name this machine (binding to 127.0.0.1 alone does not
stop DNS rebinding, a rebound request is same-origin), refuses every method but
GET and HEAD (the dashboard only reads), and adds a strict
Content-Security-Policy and the other security headers to every answer.
"""

from __future__ import annotations

import csv
import io
import json
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from proctor.bugs.errors import AmbiguousBugId, UnknownBug
from proctor.store.errors import UnknownRun, UnknownTest
from proctor.web import triage_pages, views
from proctor.web.page import Page
from proctor.web.pages import Links, environment
from proctor.web.queries import QueryError
from proctor.web.repository import ReadOnlyRepository
from proctor.web.triage_pages import TriageSource, UnknownCluster

__all__ = ["CSP", "LOOPBACK_HOSTS", "Guard", "create_app"]

CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
"""No inline script or style, nothing from elsewhere, no framing."""
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")
_HEADERS = [
    (b"content-security-policy", CSP.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"cross-origin-resource-policy", b"same-origin"),
]


def host_name(header: str) -> str:
    """The host of a ``Host`` header, without its port (``[::1]:8000`` -> ``::1``)."""
    header = header.strip().lower()
    if header.startswith("["):
        return header[1 : header.find("]")] if "]" in header else header
    return header.rsplit(":", 1)[0] if header.count(":") == 1 else header


class Guard:
    """ASGI middleware: Host check, read-only methods, security headers."""

    def __init__(self, app: ASGIApp, allowed_hosts: Iterable[str]) -> None:
        self.app = app
        self.allowed = {host.lower().strip("[]") for host in allowed_hosts}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        host = host_name(headers.get(b"host", b"").decode("latin-1"))
        refusal: Response | None = None
        if host not in self.allowed:
            refusal = Response(
                "This dashboard answers only requests addressed to "
                f"{', '.join(sorted(self.allowed))}; start it with --host NAME to allow another.\n",
                status_code=421,
                media_type="text/plain",
            )
        elif scope["method"] not in ("GET", "HEAD"):
            refusal = Response(
                "The dashboard only reads: GET and HEAD.\n",
                status_code=405,
                media_type="text/plain",
                headers={"Allow": "GET, HEAD"},
            )

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *_HEADERS]
            await send(message)

        if refusal is not None:
            await refusal(scope, receive, send_with_headers)
            return
        await self.app(scope, receive, send_with_headers)


def _csv_cell(value: object) -> object:
    """A CSV cell; text a spreadsheet would run as a formula gets a leading quote."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return "" if value is None else value


def csv_response(table: tuple[list[str], list[list[object]]], name: str) -> Response:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    header, rows = table
    writer.writerow(header)
    writer.writerows([_csv_cell(cell) for cell in row] for row in rows)
    return Response(
        out.getvalue(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}.csv"'},
    )


def wants_json(request: Request) -> bool:
    accept = request.headers.get("accept", "")
    return "application/json" in accept and "text/html" not in accept


class _Dashboard:
    def __init__(self, repo: ReadOnlyRepository, now_ns: Callable[[], int]) -> None:
        self.repo = repo
        self.now_ns = now_ns
        self.links = Links()
        self.env = environment()

    def render(self, request: Request, page: Page, fmt: str, name: str) -> Response:
        if fmt == "csv" and page.table is not None:
            return csv_response(page.table, name)
        if fmt == "json":
            return _json(page.document)
        if wants_json(request):  # the same URL answers by the Accept header
            return _json(page.document, headers={"Vary": "Accept"})
        html = self.env.get_template(page.template).render(
            **page.context,
            links=self.links,
            title=page.title,
            location=self.repo.location,
            path=request.url.path,
            query=request.url.query,
        )
        return HTMLResponse(html, headers={"Vary": "Accept"})

    def error(self, request: Request, status: int, message: str, **extra: object) -> Response:
        if wants_json(request) or request.url.path.endswith(".json"):
            return _json({"schema": 1, "error": message, **extra}, status)
        html = self.env.get_template("error.html").render(
            message=message,
            status=status,
            suggestions=extra.get("suggestions", []),
            links=self.links,
            title=f"Error {status}",
            location=self.repo.location,
            path=request.url.path,
            query="",
        )
        return HTMLResponse(html, status_code=status)

    def endpoint(
        self, build: Callable[[Request], Page], fmt: str, name: str
    ) -> Callable[[Request], Response]:
        def answer(request: Request) -> Response:
            try:
                page = build(request)
            except QueryError as error:
                return self.error(request, 400, str(error))
            except (UnknownRun, UnknownCluster, UnknownBug) as error:
                return self.error(request, 404, str(error))
            except AmbiguousBugId as error:
                return self.error(request, 400, str(error))
            except UnknownTest:
                wanted = request.query_params.get("id", "")
                near = self.repo.find_tests(wanted[-60:], limit=10)
                return self.error(
                    request,
                    404,
                    f"there is no test {wanted!r} in this repository",
                    suggestions=near,
                )
            return self.render(request, page, fmt, name)

        return answer


def _json(
    document: Mapping[str, object], status: int = 200, headers: Mapping[str, str] | None = None
) -> Response:
    body = json.dumps(document, ensure_ascii=True, indent=1)
    return Response(body, status_code=status, media_type="application/json", headers=headers)


def create_app(
    repo: ReadOnlyRepository,
    *,
    allowed_hosts: Iterable[str] = LOOPBACK_HOSTS,
    now_ns: Callable[[], int] = time.time_ns,
    triage: TriageSource | None = None,
) -> ASGIApp:
    """The dashboard over ``repo``, answering only requests whose ``Host`` is
    one of ``allowed_hosts``; ``triage``: the thresholds and known-bug rules
    (default: the default thresholds and the repository's copy of the rules)."""
    board = _Dashboard(repo, now_ns)
    source = triage or TriageSource()

    def q(request: Request) -> Mapping[str, str]:
        return request.query_params

    def run_id(request: Request) -> int:
        value: Any = request.path_params["run_id"]
        return int(value)

    def overview(r: Request) -> Page:
        return views.overview(repo, q(r), board.now_ns(), board.links, source)

    def runs_list(r: Request) -> Page:
        return views.runs_page(repo, q(r), board.now_ns(), board.links, every=False)

    def runs_all(r: Request) -> Page:
        return views.runs_page(repo, q(r), board.now_ns(), board.links, every=True)

    def text_param(request: Request, name: str) -> str:
        value: Any = request.path_params[name]
        return str(value)

    pages: list[tuple[str, str, Callable[[Request], Page], str]] = [
        # path, format, builder, name of a CSV download
        ("/", "html", overview, "overview"),
        ("/index.json", "json", overview, "overview"),
        ("/index.csv", "csv", overview, "overview"),
        ("/runs", "html", runs_list, "runs"),
        ("/runs.json", "json", runs_list, "runs"),
        ("/runs.csv", "csv", runs_all, "runs"),  # the whole list, not one page
    ]
    for path, build, name in [
        ("/runs/{run_id:int}", lambda r: views.run_page(repo, run_id(r), q(r), source), "run"),
        ("/compare", lambda r: views.compare_page(repo, q(r)), "comparison"),
        ("/test", lambda r: views.test_page(repo, q(r), board.links, source), "test"),
        ("/search", lambda r: views.search(repo, q(r)), "tests"),
        (
            "/clusters",
            lambda r: triage_pages.clusters_page(repo, q(r), board.now_ns(), source, board.links),
            "clusters",
        ),
        ("/bugs", lambda r: triage_pages.bugs_page(repo, q(r), board.links), "bugs"),
    ]:
        pages += [(path, "html", build, name), (path + ".json", "json", build, name)]
        pages.append((path + ".csv", "csv", build, name))
    # One cluster or bug: the id is any text but "/", so the .json and .csv
    # routes come first (an id never holds a dot: cluster ids are checked).
    for path, build, name in [
        (
            "/clusters/{cluster_id}",
            lambda r: triage_pages.cluster_page(
                repo, text_param(r, "cluster_id"), source, board.links
            ),
            "cluster",
        ),
        (
            "/bugs/{bug_id}",
            lambda r: triage_pages.bug_page(
                repo, text_param(r, "bug_id"), board.now_ns(), source, board.links
            ),
            "bug",
        ),
    ]:
        pages += [(path + ".json", "json", build, name), (path + ".csv", "csv", build, name)]
        pages.append((path, "html", build, name))
    routes: list[Route | Mount] = [
        Route(path, board.endpoint(build, fmt, name), methods=["GET", "HEAD"])
        for path, fmt, build, name in pages
    ]
    routes.append(Mount("/static", app=StaticFiles(packages=[("proctor.web", "static")])))

    async def not_found(request: Request, exc: Exception) -> Response:
        return board.error(request, 404, f"there is no page {request.url.path!r} here")

    app = Starlette(routes=routes, exception_handlers={404: not_found})
    return Guard(app, allowed_hosts)
