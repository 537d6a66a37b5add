"""The dashboard: ``proctor ui`` (a local web application) and ``proctor report``
(the same pages as one self-contained HTML file).

Pages are rendered on the server with Jinja2 (autoescaped) and carry their
charts as inline SVG; the little JavaScript there is lives in ``static/`` and
only helps (keyboard, auto-submitting filters): every page works without it.
Starlette, Jinja2 and uvicorn are the ``proctor[ui]`` extra, imported only here.

Modules: :mod:`~proctor.web.repository` (the store's reading half, all the
dashboard may touch), :mod:`~proctor.web.queries` (what each page shows, as
plain values), :mod:`~proctor.web.compare` (run against run),
:mod:`~proctor.web.svg` (charts), :mod:`~proctor.web.pages` (templates and
text), :mod:`~proctor.web.page` (a page as a value), :mod:`~proctor.web.views`
(the run, test and search pages), :mod:`~proctor.web.triage_pages` (clusters,
flaky and broken tests, bugs, and each failure's cluster),
:mod:`~proctor.web.known` (which bugs link a cluster or test),
:mod:`~proctor.web.app` (routes, JSON and CSV, security headers),
:mod:`~proctor.web.report` (the single-file report).
"""
