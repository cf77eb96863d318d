"""What every database connection does, whichever database it is: keep NUL out of the text.

PostgreSQL's text cannot hold a NUL character (U+0000) at all: binding one fails the whole
statement, so a NUL typed into a search box, a form or an API draft would be a 500 there while
SQLite stored it. No reader's or writer's text means a NUL (the feed already drops it), so
every string bound to a statement loses its NULs on the way in, on every database alike: the
same input then gives the same stored text and the same answer on SQLite and PostgreSQL.

Also here, as rules every database follows alike: how many values one `IN (…)` list binds,
which driver a PostgreSQL URL without one uses, how a row another writer may be adding at
the same moment is added once, and how writers of one thing take turns.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence
from typing import Any, TypeVar

from sqlalchemy import event, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import URL, Engine, make_url
from sqlalchemy.exc import ArgumentError

from .extensions import db

NUL = "\x00"
# How many values one `IN (…)` list binds. SQLite before 3.32 allowed 999 bound parameters in a
# statement, and a statement may bind others beside the list; PostgreSQL takes any number, but
# one long list is also one long statement to plan, and its rows are held at once.
IN_LIST_MAX = 500
T = TypeVar("T")


# Heroku and Render hand out "postgres://" URLs, a name SQLAlchemy has not accepted since 1.4,
# and a bare "postgresql://" means psycopg2 to SQLAlchemy before 2.1, which is not installed:
# both are meant as PostgreSQL, through the driver this project ships (psycopg 3).
POSTGRES_WITHOUT_DRIVER = ("postgres", "postgresql")
POSTGRES_DRIVER = "postgresql+psycopg"


def normalise_database_url(url: str) -> str:
    """Return a database URL as SQLAlchemy should read it: a PostgreSQL URL that names no driver
    (postgres://, postgresql://) gets psycopg; any other URL, or none, is returned as it is.

    The one place both DATABASE_URL (the app) and `copy-db --to` are read through.
    """
    try:
        parsed: URL = make_url(url)
    except ArgumentError:
        return url  # not a URL: whoever reads it next says so
    if parsed.drivername not in POSTGRES_WITHOUT_DRIVER:
        return url
    return parsed.set(drivername=POSTGRES_DRIVER).render_as_string(hide_password=False)


def in_chunks(values: Sequence[T], size: int = IN_LIST_MAX) -> Iterator[Sequence[T]]:
    """Split `values` for `IN (…)` lists of at most `size` each, in order."""
    for start in range(0, len(values), size):
        yield values[start : start + size]


def configure_database(engine: Engine) -> None:
    """Drop NUL characters from every string parameter the engine binds."""

    @event.listens_for(engine, "before_cursor_execute", retval=True)
    def _without_nul(
        _connection: Any,
        _cursor: Any,
        statement: str,
        parameters: Any,
        _context: Any,
        _executemany: bool,
    ) -> tuple[str, Any]:
        # One walk fits every shape: a row, a list of rows (executemany), and the single set
        # of a multi-row INSERT … VALUES, which SQLAlchemy also flags as executemany.
        return statement, _clean(parameters)


def _clean(value: Any) -> Any:
    """Return `value` with NULs removed from its strings (dicts, lists and tuples walked)."""
    if isinstance(value, str):
        return value.replace(NUL, "") if NUL in value else value
    if isinstance(value, dict):
        return {key: _clean(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(_clean(item) for item in value)
    return value


def insert_unless_taken(model: type[Any], rows: list[dict[str, Any]]) -> None:
    """INSERT rows, skipping any whose unique key another writer already has (ON CONFLICT DO
    NOTHING), in the session's transaction.

    On PostgreSQL the statement waits for a concurrent writer of the same key to commit and then
    skips the row, so a select that follows finds the winner's: no error, no retry. Looking
    first and inserting after let both writers find nothing and the second fail (a 500).

    Several rows go as parameters of one statement, compiled once whatever their number (with
    the rows in its VALUES, 300 new tags took 16 ms to compile); a single row may hold SQL
    expressions (a new category's position, worked out as it goes in).
    """
    dialect = db.session.get_bind().dialect.name
    if dialect == "postgresql":
        insert = postgresql.insert
    elif dialect == "sqlite":
        insert = sqlite.insert
    else:
        raise RuntimeError(f"no insert-unless-taken for the {dialect} database")
    statement = insert(model).on_conflict_do_nothing()
    if len(rows) == 1:
        db.session.execute(statement.values(rows[0]))
    elif rows:
        db.session.execute(statement, rows)


def take_turns(name: str) -> None:
    """Wait for, then hold to the end of the session's transaction, a lock named by `name`.

    For writers that must not interleave although no row holds them apart: a row lock cannot
    stop another transaction inserting a row beside the locked ones, a lock on a name can.
    PostgreSQL takes a transaction-scoped advisory lock, keyed by the name's hash; on SQLite
    every writer already waits its turn (BEGIN IMMEDIATE, blog/sqlite.py), so nothing is taken.
    """
    if db.session.get_bind().dialect.name == "postgresql":
        key = int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)
        db.session.execute(select(func.pg_advisory_xact_lock(key)))
