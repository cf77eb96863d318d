"""The same corpora on PostgreSQL, when DATABASE_URL names a server: `DATABASE_URL=... make bench`.

Each corpus is copied from the built SQLite one (same rows, same ids) into its own database,
`bench_<size>_v<version>_<schema>`, created through the app's real migrations; the search index
is then filled by the app's own rebuild, and the tables are analysed as autovacuum would. The
databases are kept for the next runs, like the SQLite files.
"""

from __future__ import annotations

import os
import sqlite3
import tempfile
import time
from pathlib import Path

from . import corpus

# Parents before children; articles <-> revisions refer to each other, so the copy runs with
# foreign-key triggers off (session_replication_role = replica, a superuser setting).
TABLES = ("users", "categories", "tags", "articles", "revisions", "article_tags")


def server_url() -> str | None:
    """Return DATABASE_URL when it names a PostgreSQL server, else None."""
    url = os.environ.get("DATABASE_URL", "")
    return url if url.startswith("postgresql") else None


def _connect(url: str):  # noqa: ANN202 - a psycopg connection
    import psycopg
    from sqlalchemy.engine import make_url

    plain = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    return psycopg.connect(plain, autocommit=True)


def ensure(size: int, sqlite_path: Path, server: str, rebuild: bool = False) -> str:
    """Return the URL of the PostgreSQL copy of a corpus, making it unless it exists."""
    from sqlalchemy.engine import make_url

    name = f"bench_{size}_v{corpus.CORPUS_VERSION}_{corpus.schema_key()}"
    url = make_url(server).set(database=name).render_as_string(hide_password=False)
    with _connect(server) as admin:
        exists = admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
        if exists and not rebuild:
            return url
        for (stale,) in admin.execute(
            "SELECT datname FROM pg_database WHERE datname LIKE %s", (f"bench\\_{size}\\_%",)
        ).fetchall():
            admin.execute(f'DROP DATABASE "{stale}" WITH (FORCE)')
        admin.execute(f'CREATE DATABASE "{name}"')
    corpus.progress(f"copying the corpus of {size:,} articles to PostgreSQL ({name})")
    started = time.perf_counter()
    _migrate(url)
    _copy(sqlite_path, url)
    _index(url)
    with _connect(url) as connection:
        connection.execute("VACUUM ANALYZE")
    corpus.progress(f"copied {size:,} articles in {time.perf_counter() - started:.0f} s")
    return url


def _migrate(url: str) -> None:
    """Create the schema through the app's real migrations."""
    from flask_migrate import upgrade

    from blog import create_app
    from blog.extensions import db

    with tempfile.TemporaryDirectory(prefix="bench-instance-") as instance:
        app = create_app(corpus.app_config(url), instance_path=instance)
        with app.app_context():
            upgrade()
            db.engine.dispose()


def _copy(sqlite_path: Path, url: str) -> None:
    """Copy every row of the corpus tables with COPY, keeping the ids."""
    source = sqlite3.connect(f"file:{sqlite_path}?mode=ro", uri=True)
    try:
        with _connect(url) as target:
            target.execute("SET session_replication_role = replica")
            for table in TABLES:
                columns = [row[1] for row in source.execute(f"PRAGMA table_info({table})")]
                names = ", ".join(columns)
                with target.cursor().copy(f"COPY {table} ({names}) FROM STDIN") as copy:
                    for row in source.execute(f"SELECT {names} FROM {table}"):
                        copy.write_row(row)
                if "id" in columns:
                    target.execute(
                        f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                        f"(SELECT max(id) FROM {table}))"
                    )
    finally:
        source.close()


def _index(url: str) -> None:
    """Fill the search index with the app's own rebuild."""
    from blog import create_app
    from blog.extensions import db
    from blog.search import rebuild_index

    with tempfile.TemporaryDirectory(prefix="bench-instance-") as instance:
        app = create_app(corpus.app_config(url), instance_path=instance)
        with app.app_context():
            rebuild_index()
            db.session.commit()
            db.engine.dispose()


def database_bytes(url: str) -> int:
    """Return the size of a PostgreSQL database, tables, indexes and TOAST included."""
    with _connect(url) as connection:
        return connection.execute("SELECT pg_database_size(current_database())").fetchone()[0]
