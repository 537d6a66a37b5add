"""A cluster named on the command line: its id, or a unique prefix of it."""

from __future__ import annotations

from proctor.cli.repository import RepositoryError
from proctor.store.contract import Store

__all__ = ["cluster_id"]


def cluster_id(store: Store, given: str) -> str:
    """The id of the stored cluster ``given`` names (the id, or a unique prefix
    of at least 4 characters); a :class:`RepositoryError` (exit status 2)
    naming the candidates when it names none or several."""
    from proctor.cli.printable import printable_id
    from proctor.triage.algorithm import ALGORITHM
    from proctor.triage.detail import ClusterNotFound, resolve_cluster

    try:
        return resolve_cluster(store, given, algorithm=ALGORITHM)
    except ClusterNotFound as error:
        lines = [printable_id(error.message)]
        if error.candidates:
            lines.append("candidates:")
            for candidate in error.candidates:
                newest = store.cluster_failures(candidate, algorithm=ALGORITHM, limit=1)
                key = newest[0].key if newest else ""
                lines.append(f"  {candidate}  {printable_id(key)[:100]}")
            if error.more:
                lines.append("  ...")
        raise RepositoryError("\n".join(lines)) from None
