"""`flask backup` on a busy site, and restoring what it wrote the way the README says."""

from __future__ import annotations

import os
import re
import shutil
import sqlite3
import stat
import threading
import time
from pathlib import Path

from flask import Flask

from blog import create_app
from blog.extensions import db

from .conftest import _config, parse, sqlite_only

pytestmark = sqlite_only  # PostgreSQL's backups are pg_dump's job (tests/test_cli.py)

# The writer stops by itself after this long, so a backup that cannot finish fails the test
# instead of hanging it.
WRITER_DEADLINE_S = 15.0


class Writer(threading.Thread):
    """Commit a row at a time into the live database until told to stop (a busy site)."""

    def __init__(self, database: Path) -> None:
        super().__init__(daemon=True)
        self.database = database
        self.stop = threading.Event()
        self.started_writing = threading.Event()
        self.written = 0

    def run(self) -> None:
        deadline = time.monotonic() + WRITER_DEADLINE_S
        connection = sqlite3.connect(self.database, timeout=10, isolation_level=None)
        try:
            while not self.stop.is_set() and time.monotonic() < deadline:
                connection.execute(
                    "INSERT INTO audit_log (action, detail, remote_addr, created_at)"
                    " VALUES ('busy', ?, '', '2025-01-01 00:00:00.000000')",
                    (f"row {self.written}",),
                )
                self.written += 1
                self.started_writing.set()
        finally:
            connection.close()


def _grow(database: Path) -> None:
    """Make the database span thousands of pages, as a real blog's does after a while."""
    connection = sqlite3.connect(database, isolation_level=None)
    connection.execute("CREATE TABLE ballast (data BLOB)")
    # One statement, one transaction: about 12 MB, some 3,000 pages.
    connection.execute(
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 4000)"
        " INSERT INTO ballast SELECT randomblob(3000) FROM n"
    )
    connection.close()


def test_backup_of_a_busy_site_restores_and_serves(app: Flask, tmp_path: Path) -> None:
    database = Path(app.config["SQLALCHEMY_DATABASE_URI"].removeprefix("sqlite:///"))
    _grow(database)
    backup = tmp_path / "backups" / "blog-backup.sqlite3"
    backup.parent.mkdir()

    writer = Writer(database)
    writer.start()
    assert writer.started_writing.wait(10)
    before = writer.written
    result = app.test_cli_runner().invoke(args=["backup", str(backup)])
    # It finished while the site was still writing, not after the writer gave up.
    finished_while_busy = writer.is_alive()
    writer.stop.set()
    writer.join()
    assert result.exit_code == 0, result.output
    assert finished_while_busy, "the backup only finished once the writes stopped"
    assert "integrity ok" in result.output and "8 articles" in result.output

    # Only its owner may read it: it holds password hashes and token digests.
    assert stat.S_IMODE(os.stat(backup).st_mode) == 0o600

    # Restore as the README says: stop the site, put the file in place, drop stale -wal/-shm.
    with app.app_context():
        db.engine.dispose()
    shutil.copyfile(backup, database)
    for suffix in ("-wal", "-shm"):
        Path(f"{database}{suffix}").unlink(missing_ok=True)
    restored = create_app(_config(database), instance_path=str(tmp_path / "restored"))
    try:
        with restored.app_context():
            connection = db.engine.raw_connection()
            try:
                check = connection.execute("PRAGMA integrity_check").fetchone()[0]
                busy_rows = connection.execute(
                    "SELECT count(*) FROM audit_log WHERE action = 'busy'"
                ).fetchone()[0]
            finally:
                connection.close()
        assert check == "ok"
        # The copy is one moment of the live database: at least what was there when it began.
        assert before <= busy_rows <= writer.written
        page = restored.test_client().get("/")
        assert page.status_code == 200
        assert len(parse(page).select("#results .card")) == 8
    finally:
        with restored.app_context():
            db.engine.dispose()


def test_backup_refuses_to_overwrite_and_leaves_no_partial_file(runner, tmp_path: Path) -> None:
    target = tmp_path / "copy.sqlite3"
    target.write_text("someone's file")
    result = runner.invoke(args=["backup", str(target)])
    assert result.exit_code != 0 and "exists already" in result.output
    assert target.read_text() == "someone's file"


def test_backup_into_a_folder_names_the_copy_by_its_time(runner, tmp_path: Path) -> None:
    # `flask backup /var/backups/blog` from cron: one new file a run, named so they sort.
    folder = tmp_path / "backups"
    folder.mkdir()
    result = runner.invoke(args=["backup", str(folder)])
    assert result.exit_code == 0, result.output
    (copy,) = folder.iterdir()
    assert re.fullmatch(r"blog-\d{4}-\d\d-\d\dT\d{6}Z\.sqlite3", copy.name), copy.name
    assert f"to {copy} (" in result.output
    assert sqlite3.connect(copy).execute("select count(*) from articles").fetchone()[0] == 8


def test_backup_into_a_missing_folder_says_to_create_it(runner, tmp_path: Path) -> None:
    target = tmp_path / "backups" / "blog.sqlite3"
    result = runner.invoke(args=["backup", str(target)])
    assert result.exit_code == 1, result.output
    assert f"the folder {target.parent} does not exist; create it first" in result.output
    assert "Traceback" not in result.output and not target.parent.exists()
