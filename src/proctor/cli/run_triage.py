"""What `proctor run` says after its summary about the run's failures: the
cluster of each, how often the history saw it, and which are new
(:func:`proctor.triage.notes.notes_for_run`)."""

from __future__ import annotations

from typing import TextIO

from proctor.store.contract import Store
from proctor.store.model import RunInfo

__all__ = ["show_run_clusters"]


def show_run_clusters(out: TextIO, store: Store, info: RunInfo) -> None:
    """Name the clusters of the stored run's failures; never fails the run
    (a store that cannot answer says nothing)."""
    if not info.counts.failures:
        return
    from proctor.cli._explain import project_explainer
    from proctor.store.errors import StoreError
    from proctor.triage.notes import notes_for_run

    try:
        explainer = project_explainer(store, strict=False)
        notes = notes_for_run(store, info, explain=None if explainer is None else explainer.pair)
    except StoreError:
        return
    from proctor.cli.triage_view import show_notes

    show_notes(out, notes, most=5)
    out.flush()
