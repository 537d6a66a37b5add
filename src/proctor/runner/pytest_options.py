"""pytest's own options given to ``proctor run``, and the workers' pytest command line.

``-k``, ``-m``, ``-v``/``-q`` and everything after ``--`` go to pytest in
every worker, so that pytest's own collection selects the tests (the same
ones ``pytest`` would: the controller never re-implements its expressions) and
its own machinery reports them. ``-x``/``--maxfail`` and ``--ff`` are not
pytest's business in a worker: they act across workers, in the controller
(:class:`~proctor.runner.options.RunOptions`); ``--pdb`` is the worker's own
option (pytest's ``--pdb`` for a pytest suite, a post-mortem for unittest's).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["PytestOptions"]


@dataclass(frozen=True, slots=True)
class PytestOptions:
    """The pytest options of one ``proctor run``."""

    keyword: str | None = None
    """``-k EXPR``: pytest's keyword expression."""
    markexpr: str | None = None
    """``-m EXPR``: pytest's mark expression."""
    verbosity: int = 0
    """``-v`` counts up, ``-q`` down (pytest's verbosity: longer or shorter diffs)."""
    extra: tuple[str, ...] = ()
    """Everything after ``--``, untouched."""

    @property
    def given(self) -> bool:
        return bool(self.args())

    @property
    def selects(self) -> bool:
        """Whether pytest may leave tests out (so the run covers part of the suite).

        Anything after ``--`` may (a path, ``--deselect``, ``-k``), so it counts.
        """
        return self.keyword is not None or self.markexpr is not None or bool(self.extra)

    @property
    def only_pytest(self) -> tuple[str, ...]:
        """The options given that mean something to pytest only (not to unittest)."""
        names = [("-k", self.keyword is not None), ("-m", self.markexpr is not None)]
        names += [("-v/-q", self.verbosity != 0), ("arguments after --", bool(self.extra))]
        return tuple(name for name, given in names if given)

    def args(self) -> tuple[str, ...]:
        """These options as pytest arguments."""
        args: list[str] = []
        if self.keyword is not None:
            args += ["-k", self.keyword]
        if self.markexpr is not None:
            args += ["-m", self.markexpr]
        if self.verbosity:
            args.append("-" + ("v" if self.verbosity > 0 else "q") * abs(self.verbosity))
        args.extend(self.extra)
        return tuple(args)

    def worker_args(self, configured: tuple[str, ...], test_path: str | None) -> tuple[str, ...]:
        """The workers' pytest arguments: the configured ``pytest_args`` (or, when
        there are none, the configured ``test_path``, which a worker uses only
        then) followed by these options."""
        args = self.args()
        if not args:
            return configured
        base = configured or ((test_path,) if test_path else ())
        return (*base, *args)
