"""pytest's assertion rewriter in a watch zygote (a warm parent of pytest workers).

pytest rewrites the asserts of the modules of every distribution that has a
``pytest11`` entry point (the plugins its configuration autoloads), of
``-p``/``pytest_plugins`` plugins and of ``register_assert_rewrite`` names,
as it imports them. A zygote that imported those modules plainly would give
its children modules pytest cannot rewrite any more (it warns "Module already
imported so cannot be rewritten", an error under ``filterwarnings = error``).
So the zygote imports them through pytest's own ``AssertionRewritingHook``,
set up as the child's was (:func:`proctor.runner.worker.warmth.rewrite_spec`:
the same marked names and test file patterns, without
``enable_assertion_pass_hook``): the code is the rewritten code pytest makes
(and caches in the same ``__pycache__`` files), and pytest in the child sees
modules loaded by a hook of its own kind, as if it had imported them.

The hook is taken out of ``sys.meta_path`` in each child, where pytest
installs its own. It reads three things of a pytest ``Config``
(``getini("python_files")``, ``getini("enable_assertion_pass_hook")``, its
``stash``): :class:`_RewriteConfig` stands for it. Tested with pytest 8 and 9.
"""

from __future__ import annotations

import importlib.machinery
import sys
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

__all__ = ["Rewriting"]


class _State:
    """pytest's ``AssertionState`` as the hook uses it: a ``trace`` that says nothing."""

    def __init__(self) -> None:
        self.mode = "rewrite"
        self.hook: object = None

    def trace(self, *args: object) -> None:
        pass


class _RewriteConfig:
    """What ``AssertionRewritingHook`` and the rewriter read of a pytest ``Config``."""

    def __init__(self, python_files: Sequence[str]) -> None:
        from _pytest.assertion.rewrite import assertstate_key
        from _pytest.stash import Stash

        self.python_files = list(python_files)
        self.stash = Stash()
        self.stash[assertstate_key] = _State()  # type: ignore[misc]

    def getini(self, name: str) -> object:
        if name == "python_files":
            return list(self.python_files)
        if name == "enable_assertion_pass_hook":
            return False
        raise ValueError(name)

    def issue_config_time_warning(self, warning: Warning, stacklevel: int) -> None:
        pass  # (the zygote never marks a name it imported: see Rewriting.spoiled)


class Rewriting:
    """pytest's assertion rewriter, installed in this process for ``spec``
    (``{"marked": [...], "python_files": [...]}``)."""

    def __init__(self, spec: Mapping[str, Sequence[str]]) -> None:
        from _pytest.assertion.rewrite import AssertionRewritingHook

        self.python_files = tuple(spec.get("python_files", ()))
        self.marked: set[str] = set()
        self.hook: Any = AssertionRewritingHook(_RewriteConfig(self.python_files))  # type: ignore[arg-type]
        self.spoiled = self._plainly_imported(spec.get("marked", ()))
        self.hook.mark_rewrite(*spec.get("marked", ()))
        self.marked.update(spec.get("marked", ()))
        sys.meta_path.insert(0, self.hook)

    def update(self, spec: Mapping[str, Sequence[str]]) -> str | None:
        """Take a child's later ``spec`` in; why this process can no longer give
        children what pytest would, if it cannot (else None)."""
        if tuple(spec.get("python_files", ())) != self.python_files:
            return "pytest's test file patterns changed"
        new = [name for name in spec.get("marked", ()) if name not in self.marked]
        if new:
            why = self._plainly_imported(new)
            if why is not None:
                return why
            self.hook.mark_rewrite(*new)
            self.marked.update(new)
        return None

    def rewrote(self) -> bool:
        """Whether a module was imported through the hook here."""
        return bool(self.hook._rewritten_names)

    def remove(self) -> None:
        """Take the hook out of the import system (in a child: pytest brings its own)."""
        if self.hook in sys.meta_path:
            sys.meta_path.remove(self.hook)

    def _plainly_imported(self, names: Iterable[str]) -> str | None:
        """A module already imported without the hook that these marks would have
        had rewritten (pytest in a child would warn, or run it unrewritten)."""
        prefixes = tuple(f"{name}." for name in names)
        exact = set(names)
        if not exact:
            return None
        for name, module in list(sys.modules.items()):
            if name not in exact and not name.startswith(prefixes):
                continue
            loader = getattr(module, "__loader__", None)
            if isinstance(loader, importlib.machinery.SourceFileLoader):
                return f"{name} was imported before pytest's assertion rewriter was set up"
        return None
