"""What can go wrong with a repository, each with a message that says what to do.

Every exception is a :class:`StoreError`, so a command can catch one type and
print the message; the messages name the repository and the way out.
"""

from __future__ import annotations

__all__ = [
    "RepositoryNotFound",
    "SchemaTooNew",
    "StoreError",
    "StoreUnavailable",
    "UnknownRun",
    "UnknownTest",
    "WriterClosed",
]


class StoreError(Exception):
    """A repository problem; ``str(error)`` is the message for the user."""


class RepositoryNotFound(StoreError):
    """There is no repository at the location (nothing has been stored yet)."""


class SchemaTooNew(StoreError):
    """The repository was written by a newer Proctor whose schema this one does not know."""


class StoreUnavailable(StoreError):
    """The database cannot be opened or reached (bad URL, server down, unreadable file)."""


class UnknownRun(StoreError, LookupError):
    """No run with that id."""


class UnknownTest(StoreError, LookupError):
    """No test with that id has ever been stored."""


class WriterClosed(StoreError):
    """A record was added to a run that is already finished."""
