"""Schema versions and the migrations between them.

A repository records every migration applied to it in ``schema_migrations``
(version, when, what). Opening a repository applies the missing ones in order,
inside one transaction, under the backend's write lock (SQLite's ``BEGIN
IMMEDIATE``, a PostgreSQL advisory lock), so two processes opening an old
repository at once upgrade it once. A new repository is built by running every
migration from the first: the path that upgrades old repositories is the path
every repository takes, and so it is tested every time.

A repository newer than this Proctor is refused rather than guessed at.
"""

from __future__ import annotations

from typing import NamedTuple

from proctor.store.errors import SchemaTooNew

__all__ = ["Migration", "check_version", "pending"]


class Migration(NamedTuple):
    """One step of the schema: the statements that take version ``version - 1`` to ``version``."""

    version: int
    description: str
    statements: tuple[str, ...]


def check_version(current: int, migrations: tuple[Migration, ...], location: str) -> None:
    """Refuse a repository whose schema is newer than the newest migration."""
    latest = migrations[-1].version
    if current > latest:
        raise SchemaTooNew(
            f"{location} has schema version {current}, but this Proctor knows versions up to "
            f"{latest}: it was written by a newer Proctor. Upgrade Proctor "
            "(pip install -U proctor) to use it."
        )


def pending(current: int, migrations: tuple[Migration, ...]) -> list[Migration]:
    """The migrations to apply to a repository at version ``current``, in order."""
    return [migration for migration in migrations if migration.version > current]
