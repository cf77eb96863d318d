"""SQLite connection settings: WAL, a busy timeout, foreign keys, and BEGIN IMMEDIATE for writers.

SQLite's default deferred transaction takes its write lock only at the first write; if another
connection wrote in between, that upgrade fails at once with SQLITE_BUSY and the busy timeout is
never consulted. So every transaction that may write (a non-GET request, a CLI command) starts with
BEGIN IMMEDIATE and waits its turn instead; plain page views keep cheap deferred read transactions.
This is SQLAlchemy's documented pysqlite recipe for taking over transaction control.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

from flask import g, has_request_context, request
from sqlalchemy import event
from sqlalchemy.engine import Engine

BUSY_TIMEOUT_MS = 10_000
READ_ONLY_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def configure_sqlite(engine: Engine) -> None:
    """Install the connection pragmas and transaction handling on an SQLite engine."""
    if engine.dialect.name != "sqlite":
        return

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Hand transaction control to SQLAlchemy (the driver's own BEGIN is always deferred).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA foreign_keys = ON")
        if engine.url.database not in (None, "", ":memory:"):
            cursor.execute("PRAGMA journal_mode = WAL")
            cursor.execute("PRAGMA synchronous = NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE" if _may_write() else "BEGIN")


F = TypeVar("F", bound=Callable[..., Any])


def writes(view: F) -> F:
    """Mark a GET view that writes (e.g. a token's last use), so it starts with BEGIN IMMEDIATE."""

    @wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        g.may_write = True
        return view(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


def reads_only_from_now_on() -> None:
    """Let the rest of this request read without the write lock (an answer that writes nothing)."""
    g.may_write = False
    g.reads_only = True


def _may_write() -> bool:
    """Say whether the current unit of work may write: any request but a read, and the CLI."""
    if has_request_context():
        if g.get("reads_only", False):
            return False
        return request.method not in READ_ONLY_METHODS or g.get("may_write", False)
    return True
