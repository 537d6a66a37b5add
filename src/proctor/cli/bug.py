"""``proctor bug``: the repository's bug records (new, show, list, edits, sync, bundles).

Thin: the work is :class:`proctor.bugs.repository.BugRepository` and
:mod:`proctor.bugs.sync`. Every string from a bug (titles, comments, tags,
authors, link targets: anyone who can send a bundle wrote them) goes through
:mod:`proctor.cli.printable` before it reaches a terminal; ``--json`` output is
ASCII JSON. A problem the user can fix exits 2 with a message; nothing already
stored is lost (every write is one transaction, checked whole first).
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from proctor.cli.printable import printable_id
from proctor.cli.repository import RepositoryError, repository_option

if TYPE_CHECKING:
    from proctor.bugs.filters import BugFilter
    from proctor.bugs.repository import BugRepository
    from proctor.bugs.sync import SyncResult
    from proctor.store.contract import Store

__all__ = ["bug"]

F = TypeVar("F", bound=Callable[..., object])

STATUSES = ("open", "in-progress", "fixed", "wontfix", "closed")
SEVERITIES = ("low", "normal", "high", "critical")
LINK_KINDS = ("rule", "cluster", "test", "commit")

json_option = click.option(
    "--json", "as_json", is_flag=True, help="Write one JSON document (docs/json.md)."
)


@contextmanager
def _bug_errors() -> Iterator[None]:
    from proctor.bugs.errors import BugError
    from proctor.store.errors import StoreError

    try:
        yield
    except (BugError, StoreError) as error:
        raise RepositoryError(str(error)) from None


@contextmanager
def _store(repository: str | None, *, write: bool) -> Iterator[Store]:
    """The repository; one that does not exist yet is created only by a write."""
    from proctor.cli.repository import close_store, repository_url
    from proctor.store.errors import RepositoryNotFound, StoreError
    from proctor.store.opening import open_store

    try:
        store = open_store(repository_url(repository), create=write)
    except RepositoryNotFound:
        raise RepositoryError(
            "there are no bug records here yet (no repository): `proctor bug new TITLE` "
            "opens a bug, `proctor bug pull REMOTE` copies another repository's"
        ) from None
    except StoreError as error:
        raise RepositoryError(str(error)) from None
    try:
        yield store
    except StoreError as error:
        raise RepositoryError(str(error)) from None
    finally:
        close_store(store)


def _algorithm() -> str:
    from proctor.triage.algorithm import ALGORITHM

    return ALGORITHM


@contextmanager
def _opened(repository: str | None, *, write: bool) -> Iterator[BugRepository]:
    from proctor.bugs.repository import BugRepository
    from proctor.store.bug_tables import bug_tables

    with _store(repository, write=write) as store, _bug_errors():
        yield BugRepository(bug_tables(store))


def _remote_url(remote: str) -> str:
    if "://" in remote:
        return remote
    # A project's root directory stands for its .proctor/ repository.
    root = Path(remote)
    if (root / ".proctor").is_dir() or (root / "pyproject.toml").is_file():
        return str(root / ".proctor")
    return remote


def _redacted(url: str) -> str:
    """``url`` without its password, for messages."""
    import re

    return re.sub(r"(://[^:/@]*):[^@/]*@", r"\1:***@", url)


@contextmanager
def _remote(remote: str, *, write: bool) -> Iterator[BugRepository]:
    from proctor.bugs.repository import BugRepository
    from proctor.cli.repository import close_store
    from proctor.store.bug_tables import bug_tables
    from proctor.store.errors import RepositoryNotFound, StoreError
    from proctor.store.opening import open_store

    try:
        store = open_store(_remote_url(remote), create=write)
    except RepositoryNotFound:
        raise RepositoryError(
            f"the remote {printable_id(_redacted(remote))} is not a repository: give another "
            "project's "
            "directory or its .proctor/ directory, an SQLite file or a postgresql:// URL"
        ) from None
    except StoreError as error:  # the store's message names the place (without a password)
        raise RepositoryError(f"remote repository: {error}") from None
    try:
        with _bug_errors():
            yield BugRepository(bug_tables(store))
    finally:
        close_store(store)


def _author() -> str:
    from proctor.bugs.author import current_author

    found = current_author()
    if found.source == "fallback":
        click.echo(
            f"note: recording the author as {printable_id(found.name)}; set PROCTOR_AUTHOR "
            "or git config user.name / user.email to name yourself",
            err=True,
        )
    return found.name


def _filters(texts: Sequence[str]) -> tuple[BugFilter, ...]:
    from proctor.bugs.filters import parse_filter

    with _bug_errors():
        return tuple(parse_filter(text) for text in texts)


def _dump(document: dict[str, object]) -> None:
    from proctor.cli.json_shapes import dump

    dump(document, sys.stdout)


def _short(repo: BugRepository, bug: str) -> str:
    return repo.short_ids([bug])[bug]


@click.group()
def bug() -> None:
    """Bug records: offline edits, conflict-free merges, filtered sync (docs/bugs.md)."""


# -- creating and reading -------------------------------------------------------------------


@bug.command("new")
@click.argument("title", required=False)
@click.option("-d", "--description", default="", help="A longer description.")
@click.option(
    "--from-cluster",
    "cluster",
    metavar="CLUSTER",
    help="Describe a failure cluster's evidence (`proctor triage`) and link it "
    "(its id or a unique prefix of it).",
)
@click.option("--tag", "tags", multiple=True, help="A tag (repeatable).")
@click.option("--assignee", help="Who is on it.")
@click.option("--severity", type=click.Choice(SEVERITIES), help="How bad it is.")
@repository_option
@json_option
def new(
    title: str | None,
    description: str,
    cluster: str | None,
    tags: tuple[str, ...],
    assignee: str | None,
    severity: str | None,
    repository: str | None,
    as_json: bool,
) -> None:
    """Open a bug titled TITLE; prints its id.

    With --from-cluster the description holds the cluster's evidence (its key,
    counts, first and last seen, tests, runs and a representative traceback)
    after any --description, the bug links the cluster, and TITLE defaults to
    the cluster's key."""
    if title is None and cluster is None:
        raise click.UsageError("give the bug a TITLE (or --from-cluster CLUSTER)")
    from proctor.bugs.repository import BugRepository
    from proctor.store.bug_tables import bug_tables

    author = _author()
    with _store(repository, write=True) as store, _bug_errors():
        repo = BugRepository(bug_tables(store))
        fields: list[tuple[Any, str]] = []
        if assignee:
            fields.append(("assignee", assignee))
        if severity:
            fields.append(("severity", severity))
        links: list[tuple[Any, str]] = []
        if cluster is not None:
            from proctor.bugs.cluster import cluster_bug
            from proctor.cli._clusters import cluster_id

            cluster = cluster_id(store, cluster)
            title, description = cluster_bug(store, cluster, title, description)
            links.append(("cluster", cluster))
        assert title is not None
        event = repo.create(
            author, title.strip(), description, tags=tags, fields=fields, links=links
        )
        short = _short(repo, event.id)
    if as_json:
        _dump({"id": event.id, "short_id": short})
    else:
        click.echo(short)


@bug.command("show")
@click.argument("bug_id", metavar="BUG")
@click.option(
    "--days",
    type=click.IntRange(1, 365),
    default=14,
    help="Failures per day over this many days (default 14).",
)
@repository_option
@json_option
def show(bug_id: str, days: int, repository: str | None, as_json: bool) -> None:
    """Show one bug (any unique prefix of its id): comments, links, and live evidence
    from the run history for its linked tests and commits."""
    from proctor.bugs.evidence import evidence
    from proctor.bugs.repository import BugRepository
    from proctor.cli.bug_show import bug_json, evidence_json, write_bug
    from proctor.store.bug_tables import bug_tables

    with _store(repository, write=False) as store, _bug_errors():
        repo = BugRepository(bug_tables(store))
        document = bug_json(repo, bug_id)
        partial = [f.text for f in repo.filters()]
        state = repo.state(str(document["id"]))
        live = evidence_json(evidence(store, state.links, days=days))
    if as_json:
        _dump({"bug": document, "evidence": live, "partial_copy_filters": partial})
        return
    write_bug(document, live, partial)


@bug.command("list")
@click.option(
    "--status",
    "statuses",
    multiple=True,
    type=click.Choice(STATUSES),
    help="Only bugs with this status (repeatable: any of them).",
)
@click.option("--open", "only_open", is_flag=True, help="Only open and in-progress bugs.")
@click.option("--tag", "tags", multiple=True, help="Only bugs with this tag (repeatable: all).")
@click.option("--assignee", help="Only bugs assigned to this person.")
@click.option("-s", "--search", help="Only bugs whose title, description or comments hold this.")
@click.option("-n", "--limit", type=click.IntRange(min=1), help="At most this many.")
@repository_option
@json_option
def list_(
    statuses: tuple[str, ...],
    only_open: bool,
    tags: tuple[str, ...],
    assignee: str | None,
    search: str | None,
    limit: int | None,
    repository: str | None,
    as_json: bool,
) -> None:
    """List bugs, most recently updated first."""
    # Straight from the snapshot table (no event is parsed): fast however many bugs.
    from proctor.bugs.shortid import short_ids
    from proctor.store.bug_tables import ListQuery, bug_tables

    if only_open:
        statuses = (*statuses, "open", "in-progress")
    query = ListQuery(tuple(sorted(set(statuses))), tags, assignee, search, limit)
    with (
        _store(repository, write=False) as store,
        _bug_errors(),
        bug_tables(store).reading() as session,
    ):
        rows = session.snapshots(query)
        every = session.bug_ids()
        partial = session.filters()
    shorts = short_ids(every, (row.id for row in rows))
    if as_json:
        _dump(
            {
                "bugs": [
                    {
                        "id": row.id,
                        "short_id": shorts[row.id],
                        "title": row.title,
                        "status": row.status,
                        "severity": row.severity,
                        "assignee": row.assignee or None,
                        "tags": list(row.tags),
                        "updated_ns": row.updated,
                        "events": row.events,
                    }
                    for row in rows
                ],
                "partial_copy_filters": partial,
            }
        )
        return
    out = []
    for row in rows:
        extra = f"  [{' '.join(row.tags)}]" if row.tags else ""
        who = f"  @{row.assignee}" if row.assignee else ""
        out.append(f"{shorts[row.id]}  {row.status:<11} {printable_id(row.title + extra + who)}")
    if out:
        click.echo("\n".join(out))
    if partial:
        click.echo(
            f"(partial copy: made with --filter {printable_id('; '.join(partial))})", err=True
        )


# -- edits ----------------------------------------------------------------------------------


def _done(repo: BugRepository, bug_id: str, what: str) -> None:
    click.echo(f"{_short(repo, repo.resolve(bug_id))}: {what}")


@bug.command("edit")
@click.argument("bug_id", metavar="BUG")
@click.option("--title")
@click.option("-d", "--description")
@click.option("--status", type=click.Choice(STATUSES))
@click.option("--severity", type=click.Choice(SEVERITIES))
@click.option("--assignee", help="Who is on it ('' for nobody).")
@repository_option
def edit(
    bug_id: str,
    title: str | None,
    description: str | None,
    status: str | None,
    severity: str | None,
    assignee: str | None,
    repository: str | None,
) -> None:
    """Change a bug's title, description, status, severity or assignee."""
    changes: list[tuple[Any, str]] = [
        (name, value)
        for name, value in (
            ("title", title),
            ("description", description),
            ("status", status),
            ("severity", severity),
            ("assignee", assignee),
        )
        if value is not None
    ]
    if not changes:
        raise click.UsageError("nothing to change: give --title, --status, --assignee, ...")
    author = _author()
    with _opened(repository, write=True) as repo:
        for name, value in changes:
            repo.set_field(bug_id, author, name, value)
        _done(repo, bug_id, ", ".join(name for name, _ in changes) + " changed")


def _setter(name: str, value: str, summary: str) -> click.Command:
    @click.argument("bug_id", metavar="BUG")
    @repository_option
    def command(bug_id: str, repository: str | None) -> None:
        author = _author()
        with _opened(repository, write=True) as repo:
            repo.set_field(bug_id, author, "status", value)
            _done(repo, bug_id, f"status {value}")

    command.__doc__ = summary
    return bug.command(name)(command)


close = _setter("close", "closed", "Close a bug (status closed).")
reopen = _setter("reopen", "open", "Reopen a bug (status open).")


@bug.command("tag")
@click.argument("bug_id", metavar="BUG")
@click.argument("tags", nargs=-1, required=True)
@repository_option
def tag(bug_id: str, tags: tuple[str, ...], repository: str | None) -> None:
    """Add tags (component:NAME for a component)."""
    author = _author()
    with _opened(repository, write=True) as repo:
        for name in tags:
            repo.add_tag(bug_id, author, name)
        _done(repo, bug_id, "tagged " + printable_id(" ".join(tags)))


@bug.command("untag")
@click.argument("bug_id", metavar="BUG")
@click.argument("tags", nargs=-1, required=True)
@repository_option
def untag(bug_id: str, tags: tuple[str, ...], repository: str | None) -> None:
    """Remove tags (as this copy sees them; a tag added elsewhere meanwhile stays)."""
    author = _author()
    with _opened(repository, write=True) as repo:
        for name in tags:
            repo.remove_tag(bug_id, author, name)
        _done(repo, bug_id, "untagged " + printable_id(" ".join(tags)))


@bug.command("comment")
@click.argument("bug_id", metavar="BUG")
@click.argument("text", required=False)
@click.option(
    "-F",
    "--file",
    "from_file",
    type=click.File("r"),
    help="Read the text from a file ('-': stdin).",
)
@repository_option
def comment(bug_id: str, text: str | None, from_file: Any, repository: str | None) -> None:
    """Add a comment (TEXT, or --file)."""
    if from_file is not None:
        text = from_file.read()
    if not text or not text.strip():
        raise click.UsageError("give the comment as TEXT or with --file")
    author = _author()
    with _opened(repository, write=True) as repo:
        repo.comment(bug_id, author, text)
        _done(repo, bug_id, "commented")


@bug.command("link")
@click.argument("bug_id", metavar="BUG")
@click.argument("kind", type=click.Choice(LINK_KINDS))
@click.argument("target")
@repository_option
def link(bug_id: str, kind: Any, target: str, repository: str | None) -> None:
    """Link to a triage rule, a failure cluster, a test id or a commit.

    A cluster is named by its id or a unique prefix of a stored one (at least
    4 characters); an id this repository does not hold is linked as given."""
    from proctor.bugs.repository import BugRepository
    from proctor.store.bug_tables import bug_tables

    author = _author()
    with _store(repository, write=True) as store, _bug_errors():
        repo = BugRepository(bug_tables(store))
        if kind == "cluster" and store.cluster_ids(target, algorithm=_algorithm(), limit=1):
            from proctor.cli._clusters import cluster_id

            target = cluster_id(store, target)
        repo.link(bug_id, author, kind, target)
        _done(repo, bug_id, f"linked {kind} {printable_id(target)}")


@bug.command("unlink")
@click.argument("bug_id", metavar="BUG")
@click.argument("kind", type=click.Choice(LINK_KINDS))
@click.argument("target")
@repository_option
def unlink(bug_id: str, kind: Any, target: str, repository: str | None) -> None:
    """Remove a link (as this copy sees it)."""
    author = _author()
    with _opened(repository, write=True) as repo:
        repo.unlink(bug_id, author, kind, target)
        _done(repo, bug_id, f"unlinked {kind} {printable_id(target)}")


# -- sync and bundles -----------------------------------------------------------------------

filter_option = click.option(
    "--filter",
    "filter_texts",
    multiple=True,
    metavar="EXPR",
    help="Only the bugs this selects, e.g. 'component=store !status=closed' (repeatable: any).",
)


def _report(direction: str, result: SyncResult) -> None:
    line = f"{direction}: {result.added} new event(s) in {len(result.bugs)} bug(s)"
    if result.sent != result.added:
        line += f" ({result.sent} sent, {result.sent - result.added} already held)"
    click.echo(line)
    if result.filters:
        texts = "; ".join(f.text for f in result.filters)
        click.echo(f"  (partial copy: made with --filter {printable_id(texts)})")


@bug.command("pull")
@click.argument("remote")
@filter_option
@repository_option
def pull(remote: str, filter_texts: tuple[str, ...], repository: str | None) -> None:
    """Take from REMOTE (a .proctor/ directory, SQLite file, postgresql:// URL) what is missing."""
    from proctor.bugs import sync

    filters = _filters(filter_texts)
    with _opened(repository, write=True) as local, _remote(remote, write=False) as other:
        _report("pulled", sync.pull(local, other, filters))


@bug.command("push")
@click.argument("remote")
@filter_option
@repository_option
def push(remote: str, filter_texts: tuple[str, ...], repository: str | None) -> None:
    """Give REMOTE what it lacks of this repository's bugs (creating it if needed)."""
    from proctor.bugs import sync

    filters = _filters(filter_texts)
    with _opened(repository, write=True) as local, _remote(remote, write=True) as other:
        _report("pushed", sync.push(local, other, filters))


@bug.command("sync")
@click.argument("remote")
@filter_option
@repository_option
def sync_(remote: str, filter_texts: tuple[str, ...], repository: str | None) -> None:
    """Pull from REMOTE, then push to it: both end with each other's changes."""
    from proctor.bugs import sync

    filters = _filters(filter_texts)
    with _opened(repository, write=True) as local, _remote(remote, write=True) as other:
        _report("pulled", sync.pull(local, other, filters))
        _report("pushed", sync.push(local, other, ()))


@bug.command("export")
@click.argument("file", type=click.Path(dir_okay=False))
@filter_option
@repository_option
def export(file: str, filter_texts: tuple[str, ...], repository: str | None) -> None:
    """Write the bugs (or those --filter selects) as a bundle FILE ('-' for stdout)."""
    from proctor.bugs import sync
    from proctor.bugs.bundle import write_file

    filters = _filters(filter_texts)
    with _opened(repository, write=False) as repo:
        data = sync.export_bundle(repo, filters)
        if file == "-":
            sys.stdout.flush()
            sys.stdout.buffer.write(data)
            sys.stdout.buffer.flush()
            return
        write_file(file, data)
    count = data.count(b"\n") - 1
    click.echo(f"wrote {file}: {count} event(s)", err=True)


@bug.command("import")
@click.argument("file", type=click.Path(dir_okay=False))
@repository_option
def import_(file: str, repository: str | None) -> None:
    """Merge a bundle FILE ('-' for stdin): all of it, after checking all of it, or nothing."""
    from proctor.bugs import sync
    from proctor.bugs.bundle import read_file

    with _bug_errors():
        data = sys.stdin.buffer.read() if file == "-" else read_file(file)
    with _opened(repository, write=True) as repo:
        _report("imported", sync.import_file_bytes(repo, data, file))
