"""Running a write transaction, again when the database says the failure was transient.

Concurrent writers can meet errors that say nothing about the work: a
PostgreSQL deadlock or serialization failure, an SQLite snapshot that went
stale or a lock SQLite reports without waiting. The transaction was rolled
back whole, so running the same work again is correct; a short, growing,
jittered pause first keeps two writers from meeting the same way again.
Every writer of the SQL store goes through :func:`in_transaction`.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import Any, TypeVar

from proctor.store.errors import StoreError
from proctor.store.sql.dialect import Dialect

__all__ = ["ATTEMPTS", "backoff", "in_transaction"]

T = TypeVar("T")

ATTEMPTS = 5
"""How many times a transaction is tried before its error is reported."""


def backoff(attempt: int) -> float:
    """Seconds to wait after failed attempt number ``attempt`` (1, 2, ...):
    about 10, 20, 40, 80 ms, each between half and one and a half times that."""
    return min(0.005 * (1 << attempt), 0.5) * (0.5 + random.random())


def in_transaction(
    conn: Any,
    dialect: Dialect,
    work: Callable[[Any], T],
    *,
    attempts: int = ATTEMPTS,
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """``work(cursor)`` in a write transaction on ``conn``, committed; its result.

    A failure ``dialect`` calls transient rolls the transaction back and runs
    ``work`` again, up to ``attempts`` times in all; ``work`` must therefore
    change nothing outside the transaction until it returns. A
    :class:`StoreError` raised by ``work`` is raised as it is; any other
    error as ``dialect`` translates it.
    """
    attempt = 0
    while True:
        attempt += 1
        try:
            with dialect.transaction(conn) as cur:
                return work(cur)
        except StoreError:
            raise
        except Exception as error:
            if attempt < attempts and dialect.transient(error):
                sleep(backoff(attempt))
                continue
            raise dialect.translate(error) from error
