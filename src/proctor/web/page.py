"""A page as a value: what every page builder returns, whatever format is asked."""

from __future__ import annotations

from typing import NamedTuple

__all__ = ["Page"]


class Page(NamedTuple):
    """A page: its template and context (HTML), its JSON document, its table (CSV)."""

    template: str
    context: dict[str, object]
    document: dict[str, object]
    table: tuple[list[str], list[list[object]]] | None = None
    title: str = ""
