"""Charts as inline SVG, drawn on the server: no chart library, no script.

Every chart is one ``<svg>`` with a ``viewBox`` (it scales with the page), a
``role="img"`` and a label, and a ``<title>`` on each mark for the tooltip.
Colours come from CSS classes (``pass``, ``fail``, ``skip``...), so the dark
theme and the report file style them too, and no ``style`` attribute is needed
under a strict Content-Security-Policy. Outcomes differ in shape as well as
colour (a failure is a full-height bar, a pass a low one, a skip a thin one),
so the strip reads without colour. Every text that came from a test or a run
is escaped here, as the templates escape theirs.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Sequence
from typing import NamedTuple

from markupsafe import Markup, escape

from proctor.store.model import HistoryEntry, RunInfo
from proctor.web.queries import failing
from proctor.wire.event import Status

__all__ = [
    "Bar",
    "counts_chart",
    "duration_chart",
    "outcome_class",
    "outcome_strip",
    "rate_chart",
    "runs_chart",
    "sparkline",
    "wall_chart",
]

Href = Callable[[int], "str | None"]

_WIDTH = 960


def outcome_class(status: Status) -> str:
    """The CSS class of an outcome: ``pass``, ``fail``, ``skip``, ``unfinished``."""
    if not status.is_final:
        return "unfinished"
    if failing(status):
        return "fail"
    if status is Status.SUCCESS:
        return "pass"
    return "skip"


def _num(value: float) -> str:
    return f"{value:.1f}".rstrip("0").rstrip(".")


def _link(mark: str, href: str | None) -> str:
    return f'<a href="{escape(href)}">{mark}</a>' if href else mark


def _svg(height: int, label: str, body: list[str], css: str) -> Markup:
    return Markup(
        f'<svg class="chart {css}" viewBox="0 0 {_WIDTH} {height}" role="img" '
        f'aria-label="{escape(label)}">' + "".join(body) + "</svg>"
    )


def _run_title(info: RunInfo) -> str:
    meta = info.metadata
    counts = info.counts
    where = " ".join(part for part in (meta.git_branch, (meta.git_commit or "")[:10]) if part)
    return (
        f"run {info.id} {where}: {counts.ran} ran, {counts.passed} passed, "
        f"{counts.failures} failed, {counts.skipped} skipped"
    )


def runs_chart(runs: Sequence[RunInfo], href: Href) -> Markup:
    """Passed, failed and skipped per run as stacked bars, oldest left."""
    height, top, bottom = 200, 18, 196
    plot = bottom - top
    body = [
        f'<line class="axis" x1="0" y1="{bottom}" x2="{_WIDTH}" y2="{bottom}"/>',
    ]
    if not runs:
        return _svg(height, "no runs", body, "runs")
    most = max(info.counts.ran for info in runs) or 1
    step = _WIDTH / len(runs)
    bar = max(step * 0.8, 0.5)
    for index, info in enumerate(runs):
        counts = info.counts
        x = index * step + (step - bar) / 2
        y = float(bottom)
        marks = []
        for css, value in (
            ("pass", counts.passed + counts.xfail),
            ("fail", counts.failures),
            ("skip", counts.skipped),
        ):
            if value:
                h = value / most * plot
                y -= h
                marks.append(
                    f'<rect class="{css}" x="{_num(x)}" y="{_num(y)}" '
                    f'width="{_num(bar)}" height="{_num(h)}"/>'
                )
        group = (
            f'<g class="run"><title>{escape(_run_title(info))}</title>'
            f'<rect class="hit" x="{_num(index * step)}" y="{top}" width="{_num(step)}" '
            f'height="{plot}"/>' + "".join(marks) + "</g>"
        )
        body.append(_link(group, href(info.id)))
    body.append(f'<text class="label" x="4" y="12">{most} tests</text>')
    return _svg(height, f"outcomes of {len(runs)} runs, oldest first", body, "runs")


def rate_chart(runs: Sequence[RunInfo], href: Href) -> Markup:
    """The failure rate (failures / tests ran) per run as a line with a point
    per run, oldest left, scaled to the highest rate shown."""
    height, top, bottom = 110, 18, 104
    plot = bottom - top
    body = [f'<line class="axis" x1="0" y1="{bottom}" x2="{_WIDTH}" y2="{bottom}"/>']
    if not runs:
        return _svg(height, "no runs", body, "rate")
    rates = [info.counts.failures / info.counts.ran if info.counts.ran else 0.0 for info in runs]
    most = max(max(rates), 0.01)
    step = _WIDTH / len(runs)
    points = []
    for index, (info, rate) in enumerate(zip(runs, rates, strict=True)):
        x = index * step + step / 2
        y = bottom - rate / most * plot
        points.append(f"{_num(x)},{_num(y)}")
        title = f"run {info.id}: {rate:.2%} failing ({info.counts.failures} of {info.counts.ran})"
        mark = (
            f'<g><title>{escape(title)}</title><rect class="hit" x="{_num(index * step)}" '
            f'y="{top}" width="{_num(step)}" height="{plot}"/>'
            f'<circle class="rate-point" cx="{_num(x)}" cy="{_num(y)}" r="2"/></g>'
        )
        body.append(_link(mark, href(info.id)))
    body.insert(1, f'<polyline class="rate" points="{" ".join(points)}"/>')
    body.append(f'<text class="label" x="4" y="12">{most:.1%} failing</text>')
    return _svg(height, f"failure rate of {len(runs)} runs, oldest first", body, "rate")


def wall_chart(runs: Sequence[RunInfo], href: Href) -> Markup:
    """Wall time per run as bars, oldest left."""
    height, top, bottom = 100, 18, 94
    plot = bottom - top
    body = [f'<line class="axis" x1="0" y1="{bottom}" x2="{_WIDTH}" y2="{bottom}"/>']
    walls = [info.wall_seconds or 0.0 for info in runs]
    if not runs:
        return _svg(height, "no runs", body, "wall")
    most = max(walls) or 1.0
    step = _WIDTH / len(runs)
    bar = max(step * 0.8, 0.5)
    for index, (info, wall) in enumerate(zip(runs, walls, strict=True)):
        h = wall / most * plot
        mark = (
            f"<g><title>{escape(f'run {info.id}: {wall:.2f}s wall time')}</title>"
            f'<rect class="hit" x="{_num(index * step)}" y="{top}" width="{_num(step)}" '
            f'height="{plot}"/><rect class="wall" x="{_num(index * step + (step - bar) / 2)}" '
            f'y="{_num(bottom - h)}" width="{_num(bar)}" height="{_num(h)}"/></g>'
        )
        body.append(_link(mark, href(info.id)))
    body.append(f'<text class="label" x="4" y="12">{most:.1f}s</text>')
    return _svg(height, f"wall time of {len(runs)} runs, oldest first", body, "wall")


_SHAPES = {"fail": (0.0, 1.0), "unfinished": (0.0, 1.0), "pass": (0.55, 0.45), "skip": (0.4, 0.2)}
"""Outcome -> (top, height) as fractions of the strip: shape as well as colour."""


def outcome_strip(history: Sequence[HistoryEntry], href: Href) -> Markup:
    """One cell per execution, newest left."""
    height = 28
    entries = [entry for entry in history if entry.status is not Status.EXISTS]
    if not entries:
        return _svg(height, "no executions", [], "strip")
    step = _WIDTH / max(len(entries), 60)
    cell = max(step - 1, 0.6) if step > 2 else step
    body = []
    for index, entry in enumerate(entries):
        css = outcome_class(entry.status)
        top, part = _SHAPES[css]
        commit = (entry.git_commit or "")[:10]
        took = "" if entry.duration is None else f", {entry.duration:.3f}s"
        title = f"run {entry.run_id} {entry.git_branch or ''} {commit}: {css}{took}"
        mark = (
            f'<g><title>{escape(title)}</title><rect class="hit" x="{_num(index * step)}" '
            f'y="0" width="{_num(step)}" height="{height}"/>'
            f'<rect class="{css}" x="{_num(index * step)}" y="{_num(top * height)}" '
            f'width="{_num(cell)}" height="{_num(part * height)}"/></g>'
        )
        body.append(_link(mark, href(entry.run_id)))
    return _svg(
        height, f"outcomes of the last {len(entries)} executions, newest left", body, "strip"
    )


def duration_chart(history: Sequence[HistoryEntry], href: Href) -> Markup:
    """Duration per execution (oldest left) as points coloured by outcome,
    with a rolling median of 9 as a line."""
    height, top, bottom = 160, 18, 154
    plot = bottom - top
    body = [f'<line class="axis" x1="0" y1="{bottom}" x2="{_WIDTH}" y2="{bottom}"/>']
    timed = [e for e in reversed(history) if e.duration is not None]
    if not timed:
        return _svg(height, "no timed executions", body, "durations")
    most = max(e.duration or 0.0 for e in timed) or 1.0
    step = _WIDTH / len(timed)
    median_points = []
    for index, entry in enumerate(timed):
        x = index * step + step / 2
        y = bottom - (entry.duration or 0.0) / most * plot
        title = f"run {entry.run_id}: {entry.duration:.3f}s"
        point = (
            f'<circle class="{outcome_class(entry.status)}" cx="{_num(x)}" cy="{_num(y)}" '
            f'r="3"><title>{escape(title)}</title></circle>'
        )
        body.append(_link(point, href(entry.run_id)))
        window = [w.duration or 0.0 for w in timed[max(0, index - 4) : index + 5]]
        median = statistics.median(window)
        median_points.append(f"{_num(x)},{_num(bottom - median / most * plot)}")
    body.append(f'<polyline class="median" points="{" ".join(median_points)}"/>')
    body.append(f'<text class="label" x="4" y="12">{most:.3f}s</text>')
    return _svg(height, f"durations of {len(timed)} executions, oldest first", body, "durations")


class Bar(NamedTuple):
    """One bar of :func:`counts_chart`: its tooltip, its height, where it links."""

    title: str
    value: int
    href: str | None = None


def counts_chart(bars: Sequence[Bar], label: str, unit: str = "failures") -> Markup:
    """Counts as bars (a cluster's failures per run or per day), oldest left;
    a bar of 0 is a thin base mark, so a gap reads as a gap."""
    height, top, bottom = 120, 18, 114
    plot = bottom - top
    body = [f'<line class="axis" x1="0" y1="{bottom}" x2="{_WIDTH}" y2="{bottom}"/>']
    if not bars:
        return _svg(height, f"no {unit}", body, "counts")
    most = max(max(bar.value for bar in bars), 1)
    step = _WIDTH / len(bars)
    width = max(step * 0.8, 0.5)
    for index, bar in enumerate(bars):
        h = bar.value / most * plot if bar.value else 1.0
        css = "fail" if bar.value else "zero"
        mark = (
            f"<g><title>{escape(bar.title)}</title>"
            f'<rect class="hit" x="{_num(index * step)}" y="{top}" width="{_num(step)}" '
            f'height="{plot}"/><rect class="{css}" x="{_num(index * step + (step - width) / 2)}" '
            f'y="{_num(bottom - h)}" width="{_num(width)}" height="{_num(h)}"/></g>'
        )
        body.append(_link(mark, bar.href))
    body.append(f'<text class="label" x="4" y="12">{most} {escape(unit)}</text>')
    return _svg(height, label, body, "counts")


def sparkline(counts: Sequence[int], label: str) -> Markup:
    """A small bar line of counts (a cluster's trend), oldest left."""
    width, height = 120, 20
    top = max(counts, default=0)
    body = []
    if counts and top:
        step = width / len(counts)
        for index, count in enumerate(counts):
            if count:
                h = max(count / top * height, 1.5)
                body.append(
                    f'<rect class="fail" x="{_num(index * step)}" y="{_num(height - h)}" '
                    f'width="{_num(max(step - 0.5, 0.5))}" height="{_num(h)}"/>'
                )
    return Markup(
        f'<svg class="spark" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="{escape(label)}"><title>{escape(label)}</title>' + "".join(body) + "</svg>"
    )
