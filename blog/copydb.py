"""Moving house: copy the site's database into an empty one (SQLite to PostgreSQL, typically).

`flask --app app copy-db --to URL` creates the schema at URL through the migrations, copies every
table of the models (accounts, articles, every revision, review events, tokens, idempotent
answers, the audit log, sign-ins, media rows...) with their primary keys, moves PostgreSQL's id
sequences past the copied ids, checks that every table holds as many rows as the source, and
rebuilds the search index there. Uploaded media files stay where they are (MEDIA_ROOT or S3): the
copied rows name the same keys.

The source is read in one snapshot (SQLite: a deferred read transaction in WAL mode; PostgreSQL:
REPEATABLE READ), so the copy is one consistent moment and the running site is never blocked;
whatever it writes after that moment is not in the copy, so stop writes before switching over.
The target is written in one transaction: a failed copy leaves only the empty schema behind.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from flask import Flask, current_app
from flask.cli import with_appcontext
from flask_migrate import upgrade
from sqlalchemy import (
    Column,
    Connection,
    Engine,
    Table,
    bindparam,
    create_engine,
    event,
    func,
    insert,
    inspect,
    select,
    update,
)
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, IntegrityError, NoSuchModuleError, OperationalError
from sqlalchemy.pool import NullPool

from .database import normalise_database_url
from .extensions import db, migrate

BATCH = 1000  # rows per executemany: bounded memory whatever the size of the site
# Tables the migrations create besides the models' own: the version stamp and the search index
# (filled by the rebuild, never copied).
OWN_EXTRA_TABLES = ("alembic_version",)
SEARCH_TABLE_PREFIX = "articles_fts"


class CopyError(RuntimeError):
    """The copy cannot start or did not check out; the message says why and what to do."""


@dataclass
class CopyReport:
    """What was copied where: rows per table (equal on both sides) and the search index size."""

    target: str
    rows: dict[str, int] = field(default_factory=dict)
    indexed: int = 0

    def lines(self) -> list[str]:
        """The summary a person reads after the command."""
        width = max((len(name) for name in self.rows), default=0)
        out = [f"  {name:<{width}}  {count:>8,}" for name, count in self.rows.items()]
        total = sum(self.rows.values())
        out.append(
            f"Copied {total:,} rows in {len(self.rows)} tables to {self.target}; counts match; "
            f"{self.indexed:,} articles in its search index."
        )
        return out


def copy_database(target_url: str, batch: int = BATCH) -> CopyReport:
    """Copy the current app's database into the empty database at `target_url`; check it."""
    source_engine = db.engine
    url = _parse(target_url)
    shown = url.render_as_string(hide_password=True)
    if _same_database(source_engine.url, url):
        raise CopyError("the target is the site's own database; name another one")
    _check_source_is_current(source_engine)
    target_app = _app_for(url)
    with target_app.app_context():
        try:
            return _copy_into(source_engine, db.engine, shown, batch)
        finally:
            db.session.remove()
            db.engine.dispose()  # the command ends here: leave no connection to the target open


def _copy_into(source_engine: Engine, target_engine: Engine, shown: str, batch: int) -> CopyReport:
    """Create the schema on the target (this app context's database), copy, check, index."""
    from .search import rebuild_index

    _check_empty(target_engine, shown)
    upgrade()  # the schema, exactly as `flask init-db` makes it
    report = CopyReport(target=shown)
    with _snapshot(source_engine) as source, target_engine.begin() as target:
        try:
            report.rows = _copy_tables(source, target, batch)
        except IntegrityError:
            # Empty when checked, not when written: another copy-db (or a site) wrote there.
            raise CopyError(
                f"{shown} was written to while this copy ran (another copy-db into it?); "
                "nothing was kept from this run"
            ) from None
        counts = {table: _count(target, table) for table in report.rows}
        wrong = {t: (n, counts[t]) for t, n in report.rows.items() if counts[t] != n}
        if wrong:
            detail = ", ".join(f"{t}: {a} here, {b} there" for t, (a, b) in wrong.items())
            raise CopyError(f"the counts differ after copying ({detail}); nothing was kept")
        if target.dialect.name == "postgresql":
            _move_sequences(target)
    report.indexed = rebuild_index()
    db.session.commit()
    return report


def _parse(target_url: str) -> URL:
    """Read the target URL, or say what one looks like."""
    try:
        url = make_url(normalise_database_url(target_url.strip()))
    except ArgumentError:
        raise CopyError(
            f"{target_url!r} is not a database URL; e.g. postgresql+psycopg://user@host/blog"
        ) from None
    if url.get_backend_name() not in ("postgresql", "sqlite"):
        raise CopyError(f"copy-db copies into PostgreSQL or SQLite, not {url.get_backend_name()}")
    if url.get_backend_name() == "sqlite" and url.database in (None, "", ":memory:"):
        raise CopyError("an in-memory SQLite database would vanish at once; name a file")
    return url


def _same_database(source: URL, target: URL) -> bool:
    """Say whether two URLs name the same database (SQLite: the same file)."""
    if source.get_backend_name() != target.get_backend_name():
        return False
    if source.get_backend_name() == "sqlite":
        return Path(source.database or "").resolve() == Path(target.database or "").resolve()
    where = (source.host, source.port, source.database)
    return where == (target.host, target.port, target.database)


def _check_source_is_current(engine: Engine) -> None:
    """Refuse a source whose schema is behind the code: the models would not match it."""
    head = ScriptDirectory.from_config(migrate.get_config()).get_current_head()
    with engine.connect() as connection:
        current = MigrationContext.configure(connection).get_current_revision()
    if current != head:
        raise CopyError(
            f"the site's database is at migration {current}, the code at {head}: "
            "run `flask --app app init-db` first"
        )


def _app_for(url: URL) -> Flask:
    """An app like this one on the target database (the running app's config is not touched)."""
    from . import create_app

    config = dict(current_app.config)
    config["SQLALCHEMY_DATABASE_URI"] = url.render_as_string(hide_password=False)
    # Engine options were chosen for the source's database and driver.
    config.pop("SQLALCHEMY_ENGINE_OPTIONS", None)
    config.pop("SQLALCHEMY_BINDS", None)
    try:
        return create_app(config, instance_path=current_app.instance_path)
    except (ArgumentError, NoSuchModuleError, ModuleNotFoundError) as error:
        raise CopyError(
            f"cannot use {url.render_as_string(hide_password=True)}: {error} "
            "(for PostgreSQL write postgresql+psycopg://...)"
        ) from None


def _check_empty(engine: Engine, shown: str) -> None:
    """Refuse a database that holds anything: a copy must never mix with other data."""
    try:
        with engine.connect() as connection:
            names = set(inspect(connection).get_table_names())
            ours = {table.name for table in db.metadata.sorted_tables}
            foreign = sorted(
                name
                for name in names - ours
                if name not in OWN_EXTRA_TABLES and not name.startswith(SEARCH_TABLE_PREFIX)
            )
            if foreign:
                raise CopyError(
                    f"{shown} is not empty: it has other tables ({', '.join(foreign[:5])}); "
                    "copy into a new, empty database"
                )
            full = [name for name in sorted(names & ours) if _count(connection, name)]
            if full:
                raise CopyError(
                    f"{shown} is not empty: {', '.join(full[:5])} already hold rows; "
                    "copy into a new, empty database"
                )
    except OperationalError as error:
        reason = str(error.orig).strip().splitlines()[0] if error.orig else str(error)
        raise CopyError(f"cannot connect to {shown}: {reason}") from None


@contextmanager
def _snapshot(engine: Engine) -> Iterator[Connection]:
    """A connection that reads one consistent moment of the source without blocking its writers.

    The site's own SQLite engine begins with BEGIN IMMEDIATE outside requests (it may write),
    which would hold every writer off for the whole copy: a reader of its own says BEGIN.
    """
    if engine.dialect.name == "sqlite":
        reader = create_engine(engine.url, poolclass=NullPool)

        @event.listens_for(reader, "connect")
        def _on_connect(dbapi_connection: Any, _record: Any) -> None:
            dbapi_connection.isolation_level = None  # SQLAlchemy's BEGIN below, not the driver's

        @event.listens_for(reader, "begin")
        def _on_begin(connection: Connection) -> None:
            connection.exec_driver_sql("BEGIN")  # deferred: the first read fixes the snapshot

        try:
            with reader.connect() as connection, connection.begin():
                yield connection
        finally:
            reader.dispose()
    else:
        with engine.connect() as connection:
            connection = connection.execution_options(isolation_level="REPEATABLE READ")
            with connection.begin():
                yield connection


def _late_columns(tables: list[Table]) -> dict[str, list[Column[Any]]]:
    """Per table, the foreign keys to a table copied at the same time or later (a cycle).

    sorted_tables puts a table after the ones it points at, except across a cycle such as
    articles.published_revision_id <-> revisions.article_id (use_alter): those columns are
    written as NULL first and filled in once every row exists.
    """
    position = {table.name: index for index, table in enumerate(tables)}
    late: dict[str, list[Column[Any]]] = {}
    for table in tables:
        for key in table.foreign_keys:
            if position.get(key.column.table.name, -1) >= position[table.name]:
                if not key.parent.nullable:
                    raise CopyError(f"cannot copy {table.name}: {key.parent.name} is a cycle")
                late.setdefault(table.name, []).append(key.parent)
    return late


def _copy_tables(source: Connection, target: Connection, batch: int) -> dict[str, int]:
    """Copy every model table in dependency order, keeping the keys; return the source counts."""
    tables = list(db.metadata.sorted_tables)
    late = _late_columns(tables)
    pending: dict[str, list[dict[str, Any]]] = {}
    counts: dict[str, int] = {}
    for table in tables:
        counts[table.name] = _count(source, table.name)
        deferred = late.get(table.name, [])
        keys = list(table.primary_key.columns)
        rows = source.execution_options(yield_per=batch).execute(select(table).order_by(*keys))
        for part in rows.partitions():
            values = [dict(row._mapping) for row in part]
            for row in values:
                later = {column.key: row[column.key] for column in deferred}
                if any(value is not None for value in later.values()):
                    pk = {f"pk_{column.key}": row[column.key] for column in keys}
                    pending.setdefault(table.name, []).append({**pk, **later})
                    row.update(dict.fromkeys(later))
            target.execute(insert(table), values)
    for name, rows in pending.items():
        table = db.metadata.tables[name]
        keys = list(table.primary_key.columns)
        fill = (
            update(table)
            .where(*(column == bindparam(f"pk_{column.key}") for column in keys))
            .values({column.key: bindparam(column.key) for column in late[name]})
        )
        for start in range(0, len(rows), batch):
            target.execute(fill, rows[start : start + batch])
    return counts


def _count(connection: Connection, name: str) -> int:
    table = db.metadata.tables[name]
    return connection.scalar(select(func.count()).select_from(table)) or 0


def _move_sequences(target: Connection) -> None:
    """Start each id sequence after the copied ids (inserting explicit ids never advances it)."""
    for table in db.metadata.sorted_tables:
        keys = list(table.primary_key.columns)
        if len(keys) != 1 or keys[0].autoincrement not in (True, "auto"):
            continue
        column = keys[0]
        sequence = func.pg_get_serial_sequence(table.name, column.name)
        # setval(seq, max + 1, false): the next id handed out is max + 1 (1 for an empty table).
        target.execute(select(func.setval(sequence, func.coalesce(func.max(column), 0) + 1, False)))


@click.command("copy-db")
@with_appcontext
@click.option(
    "--to",
    "target_url",
    required=True,
    metavar="URL",
    help="An empty database, e.g. postgresql+psycopg://user@host/blog",
)
def copy_db(target_url: str) -> None:
    """Copy everything into an empty database at URL, check the counts, rebuild its search."""
    try:
        report = copy_database(target_url)
    except CopyError as error:
        raise click.ClickException(str(error)) from None
    for line in report.lines():
        click.echo(line)
    click.echo(
        "Stop writes to this site, then point DATABASE_URL at the copy and restart. Anything "
        "written here after the copy began is not in it: run copy-db again into a fresh "
        "database if in doubt."
    )
