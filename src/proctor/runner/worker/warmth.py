"""What a worker forked by a watch zygote tells its warm parent as it exits.

A zygote (:mod:`proctor.runner.worker.zygote`) learns from its children what
it may hold for the next ones. Besides the modules they imported (read from
``sys.modules`` as the child exits), a pytest child says how pytest rewrote
asserts in it (:func:`rewrite_spec`): the zygote then imports the plugins'
distributions through pytest's own assertion rewriter, which gives the same
code pytest would have made in the child. The pytest adapter fills
:data:`LEARNED` while its session is up (its configuration is gone by the
time the child reports).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import Any

__all__ = ["LEARNED", "Learned", "rewrite_spec"]


@dataclass(slots=True)
class Learned:
    """What this process learned for its zygote (one pytest session at most)."""

    pytest_session: bool = False
    """A pytest session ran here (so :attr:`rewrite` says something)."""
    rewrite: dict[str, list[str]] | None = None
    """How pytest rewrote asserts here (:func:`rewrite_spec`); None: it did not."""
    fixtures: list[tuple[str, str]] = field(default_factory=list)
    """The session-scoped fixtures set up here that a warm session may hold:
    (name, the node id of the directory whose conftest defines it), in set-up order."""

    def report(self, modules: list[str]) -> dict[str, object]:
        """The child's report to its zygote: ``modules`` and what pytest said."""
        report: dict[str, object] = {"modules": modules}
        if self.pytest_session:
            report["rewrite"] = self.rewrite
            report["fixtures"] = [list(pair) for pair in self.fixtures]
        return report


LEARNED = Learned()


def rewrite_spec(config: Any) -> dict[str, list[str]] | None:
    """How pytest's assertion rewriter was set up for ``config`` (a
    ``pytest.Config``): the names it marks for rewriting and the test file
    patterns (``python_files``) it rewrites; None when asserts are not rewritten
    the plain way (``--assert=plain``, ``enable_assertion_pass_hook``, a hook
    that is not pytest's) or pytest's internals moved."""
    with contextlib.suppress(Exception):
        from _pytest.assertion.rewrite import AssertionRewritingHook

        if config.getoption("assertmode") != "rewrite":
            return None
        if config.getini("enable_assertion_pass_hook"):
            return None
        hook = config.pluginmanager.rewrite_hook
        if type(hook) is not AssertionRewritingHook:
            return None
        marked = sorted(str(name) for name in hook._must_rewrite)
        return {"marked": marked, "python_files": [str(p) for p in hook.fnpats]}
    return None
