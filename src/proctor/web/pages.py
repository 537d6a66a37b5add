"""Templates and how values become text on a page: one renderer for the server
and the report file.

The Jinja2 environment autoescapes everything (``autoescape=True``: a plain
``Environment`` would not), and text from tests also goes through
:func:`proctor.cli.printable.printable` first, so escape sequences and control
characters show as visible escapes (``\\x1b``) rather than reaching the page
raw. Attachments are cut to a size and binary ones are never inlined.
:class:`Links` is how a page names another: the server links every run and
test; the report, one file, links only inside itself.
"""

from __future__ import annotations

import time
import urllib.parse
from collections.abc import Mapping
from functools import cache
from importlib import resources
from typing import NamedTuple

import jinja2

from proctor.cli._show import run_state
from proctor.cli.printable import printable, printable_id
from proctor.cli.render import format_duration, is_text
from proctor.web.known import external_url
from proctor.web.svg import outcome_class
from proctor.wire.record import Attachment

__all__ = [
    "AttachmentView",
    "Links",
    "ReportLinks",
    "attachment_view",
    "environment",
    "static_text",
]

PAGE_TEXT_LIMIT = 256 * 1024
"""Characters of one attachment shown on a page; the rest is left out with a note."""


class AttachmentView(NamedTuple):
    name: str
    mime_type: str
    size: int
    text: str | None
    """Printable text (None for binary content, which is never inlined)."""
    omitted: int
    """Characters of text left out (or bytes of binary content)."""


def attachment_view(attachment: Attachment, limit: int = PAGE_TEXT_LIMIT) -> AttachmentView:
    """An attachment as a page shows it: text neutralised and cut to ``limit``."""
    size = len(attachment.content)
    if not is_text(attachment):
        return AttachmentView(attachment.name, attachment.mime_type, size, None, size)
    text = attachment.content.decode("utf-8", "replace")
    omitted = max(len(text) - limit, 0)
    return AttachmentView(
        attachment.name, attachment.mime_type, size, printable(text[:limit]), omitted
    )


class Links:
    """URLs of the live dashboard's pages."""

    standalone = False

    def run(self, run_id: int) -> str | None:
        return f"/runs/{run_id}"

    def test(self, test_id: str) -> str | None:
        return "/test?" + urllib.parse.urlencode({"id": test_id})

    def compare(self, base: int, head: int) -> str | None:
        return f"/compare?base={base}&head={head}"

    def cluster(self, cluster: str) -> str | None:
        return "/clusters/" + urllib.parse.quote(cluster, safe="")

    def bug(self, bug: str) -> str | None:
        return "/bugs/" + urllib.parse.quote(bug, safe="")

    def page(self, path: str, params: Mapping[str, str] | None = None) -> str:
        return path + ("?" + urllib.parse.urlencode(params) if params else "")


class ReportLinks(Links):
    """The report file: one page, no server; only its own run is a link (an anchor)."""

    standalone = True

    def __init__(self, run_id: int) -> None:
        self._run_id = run_id

    def run(self, run_id: int) -> str | None:
        return "#summary" if run_id == self._run_id else None

    def test(self, test_id: str) -> str | None:
        return None

    def compare(self, base: int, head: int) -> str | None:
        return None

    def cluster(self, cluster: str) -> str | None:
        return None

    def bug(self, bug: str) -> str | None:
        return None


def format_when(ns: int | None) -> str:
    """A moment in UTC, to the second (every page says UTC once)."""
    if ns is None:
        return "-"
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(ns // 1_000_000_000))


def format_seconds(seconds: float | None) -> str:
    return "-" if seconds is None else format_duration(seconds)


@cache
def static_text(name: str) -> str:
    """A file of ``proctor/web/static`` (the report inlines the stylesheet)."""
    return (resources.files("proctor.web") / "static" / name).read_text("utf-8")


@cache
def environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("proctor.web", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(
        when=format_when,
        seconds=format_seconds,
        tid=printable_id,
        text=printable,
        outcome=outcome_class,
        short=lambda commit: (commit or "")[:10],
        percent=lambda share: "-" if share is None else f"{share:.1%}",
    )
    env.globals.update(
        attachment_view=attachment_view, run_state=run_state, external_url=external_url
    )
    return env
