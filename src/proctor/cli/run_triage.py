"""What `proctor run` says after its summary about the run's failures: the
cluster of each, how often the history saw it, and which are new
(:func:`proctor.triage.notes.notes_for_run`); and the chunk of older stored
failures the commands that store runs sign after storing one
(:func:`proctor.triage.recluster.catch_up`)."""

from __future__ import annotations

from typing import TextIO

from proctor.store.contract import Store
from proctor.store.model import RunInfo

__all__ = ["show_run_clusters", "sign_older_failures"]


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


def sign_older_failures(err: TextIO, store: Store) -> None:
    """After a run is stored: sign a bounded chunk of the stored failures not
    yet signed under the current algorithm (or stored without their type and
    message), and say so in one line on ``err``. Only a store that signs what
    it stores does; never fails the command (a store error says nothing)."""
    signer = store.signer
    if signer is None:
        return
    from proctor.store.errors import StoreError
    from proctor.triage.recluster import catch_up
    from proctor.triage.signer import RecordSigner

    try:
        report = catch_up(store, signer if isinstance(signer, RecordSigner) else None)
    except StoreError:
        return
    if not report.signed:
        return
    if report.done:
        err.write(
            f"proctor: signed {report.signed:,} older stored failures under "
            f"{report.algorithm}; every stored failure is signed now\n"
        )
    else:
        err.write(
            f"proctor: signed {report.signed:,} older stored failures under "
            f"{report.algorithm} (a chunk after each stored run; "
            "`proctor triage recluster` signs the rest at once)\n"
        )
    err.flush()
