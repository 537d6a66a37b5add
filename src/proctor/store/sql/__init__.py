"""The SQL repositories: one store over SQLite or PostgreSQL, told apart by a dialect.

* ``store``: :class:`SqlStore`, every query of the contract, and its run writer;
* ``dialect``: the :class:`Dialect` protocol, what differs between backends
  (connecting and opening, transactions, transient errors, spelling, locks);
* ``sqlite``, ``postgres``: the two dialects and the stores that open them;
* ``transaction``: :func:`in_transaction`, the one retrying write transaction;
* ``write``: a batch of records in one transaction; ``housekeeping``:
  statistics, removing runs, garbage, seeded timings; ``failures``: signed
  failures; ``bugs``: the bug tables; ``interned`` and ``records``: ids and
  rows back into records; ``rules``: the model's rules spelled in SQL;
* ``migrations``, ``sqlite_schema``, ``postgres_schema``: the schemas.

Every part is given the dialect (and a connection or cursor) by whoever calls
it, and none uses another's private names. Nothing is imported here, so that
opening SQLite never imports psycopg; :func:`proctor.store.open_store` picks
the backend.
"""
