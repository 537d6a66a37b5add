"""A bug opened from a failure cluster (`proctor bug new --from-cluster`): its
description holds the cluster's evidence as it stands (:mod:`proctor.triage.detail`),
and the bug links the cluster, whose live evidence `bug show` reads each time."""

from __future__ import annotations

import re

from proctor.bugs.errors import BugError
from proctor.bugs.event import MAX_LINE, MAX_TEXT
from proctor.store.contract import Store
from proctor.triage.algorithm import ALGORITHM
from proctor.triage.detail import cluster_detail, evidence_text

__all__ = ["cluster_bug"]

_NOT_A_WORD = re.compile(r"[\x00-\x1f\x7f-\x9f\ud800-\udfff]+")


def cluster_bug(store: Store, cluster: str, title: str | None, description: str) -> tuple[str, str]:
    """The title (``title``, or the cluster's key) and description (``description``,
    then the cluster's evidence) of a bug about ``cluster``; :class:`BugError`
    when the repository has no such cluster."""
    detail = cluster_detail(store, cluster, algorithm=ALGORITHM)
    if detail is None:
        raise BugError(
            f"there is no failure cluster {cluster!r} under {ALGORITHM} here; "
            "`proctor triage` lists them"
        )
    if title is None or not title.strip():
        key = _NOT_A_WORD.sub(" ", detail.newest.key).strip()
        title = (key or f"failure cluster {cluster}")[:MAX_LINE].strip()
    evidence = evidence_text(detail)
    if description:
        description = description.rstrip("\n") + "\n\n"
    room = MAX_TEXT - len(description)
    if len(evidence) > room:
        evidence = evidence[: max(room - 4, 0)] + "...\n"
    return title, description + evidence
