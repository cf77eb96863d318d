"""Writes that race other servers: retry in a SAVEPOINT when a unique constraint says "taken".

On SQLite every writer waits its turn (BEGIN IMMEDIATE), so "read, then choose a free value" is
safe there. On PostgreSQL two servers run the same transaction side by side: both read that
`my-title` is free, both insert it, and the unique constraint turns the slower one away. The
slower one then retries: its unit of work ran inside a SAVEPOINT, which is rolled back (the rest
of its transaction stays intact and usable), and the work runs again, reading afresh what the
winner committed and choosing anew. Nothing here commits: the caller's transaction goes on.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Callable, Sequence
from typing import TypeVar

from sqlalchemy.exc import IntegrityError

from .extensions import db

T = TypeVar("T")
# A few rounds at most: each retry means another server just took the value we wanted.
ATTEMPTS = 5
UNIQUE_VIOLATION = "23505"  # PostgreSQL's SQLSTATE for a duplicate key
_PG_KEY = re.compile(r"^Key \((?P<columns>[^)]*)\)=")
_SQLITE_UNIQUE = "UNIQUE constraint failed: "


def unique_violation(error: IntegrityError) -> tuple[str, tuple[str, ...]] | None:
    """Say which table and columns a duplicate key was refused on; None for other errors.

    PostgreSQL reports the table in its diagnostics and the columns in the detail line
    ("Key (slug)=(x) already exists."); SQLite names both in its message.
    """
    original = error.orig
    sqlstate = getattr(original, "sqlstate", None)
    if sqlstate is not None:  # psycopg
        if sqlstate != UNIQUE_VIOLATION:
            return None
        diagnostics = original.diag  # type: ignore[union-attr]
        found = _PG_KEY.match(diagnostics.message_detail or "")
        columns = found["columns"].split(", ") if found else []
        return diagnostics.table_name or "", tuple(columns)
    if isinstance(original, sqlite3.IntegrityError):
        message = str(original)
        if not message.startswith(_SQLITE_UNIQUE):
            return None
        names = [name.strip() for name in message.removeprefix(_SQLITE_UNIQUE).split(",")]
        table = names[0].partition(".")[0]
        return table, tuple(name.partition(".")[2] for name in names)
    return None


def retry_unique(
    work: Callable[[], T], table: str, columns: Sequence[str], attempts: int = ATTEMPTS
) -> T:
    """Run `work` in a SAVEPOINT and flush it; run it again when another writer took the value.

    Only a duplicate key on `table`(`columns`) is retried; `work` must read what it needs inside
    (a retry has to see the winner's row). Any other error, or the last attempt's, is raised.
    """
    wanted = (table, tuple(columns))
    for attempt in range(1, attempts + 1):
        try:
            with db.session.begin_nested():  # flushes on leaving: the INSERT/UPDATE runs here
                return work()
        except IntegrityError as error:
            if attempt == attempts or unique_violation(error) != wanted:
                raise
    raise AssertionError("unreachable: the last attempt returns or raises")
