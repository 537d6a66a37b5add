"""What can go wrong with bug records, each with a message that says what, where and what to do.

Every exception is a :class:`BugError`, so a command can catch one type and print
``str(error)``. Refusing bad input never changes a replica: validation happens
before anything is applied.
"""

from __future__ import annotations

__all__ = [
    "AmbiguousBugId",
    "BugError",
    "BugEventError",
    "BundleError",
    "FilterError",
    "UnknownBug",
    "shown",
]


def shown(value: object, limit: int = 60) -> str:
    """``repr(value)`` cut to ``limit`` characters: untrusted input quoted in a message.

    ``repr`` escapes control characters, so a message never carries a terminal escape;
    the cut keeps a megabyte of garbage out of it.
    """
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


class BugError(Exception):
    """A bug-record problem; ``str(error)`` is the message for the user."""


class BugEventError(BugError, ValueError):
    """An event is malformed, forged, from a newer Proctor, or inconsistent with its bug.

    ``where`` names the event (its position in a bundle, or its id) and ``problem``
    says what is wrong with it.
    """

    def __init__(self, where: str, problem: str) -> None:
        super().__init__(f"{where}: {problem}")
        self.where = where
        self.problem = problem


class BundleError(BugError, ValueError):
    """A bundle or summary file is not one, is truncated, or is from a newer Proctor."""


class FilterError(BugError, ValueError):
    """A ``--filter`` expression does not parse."""


class UnknownBug(BugError, LookupError):
    """No bug in this copy has that id or id prefix."""


class AmbiguousBugId(BugError, LookupError):
    """An id prefix matches more than one bug in this copy."""
