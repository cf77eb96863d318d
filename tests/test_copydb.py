"""Moving house: `flask copy-db --to URL` copies a running SQLite site into an empty database.

SQLite to SQLite runs everywhere; SQLite to PostgreSQL runs in `make test-postgres`, which gives
a server to create a fresh database on. Either way the copy must serve the same site: the same
rows in every table, a search that finds the articles, sign-in with the same password, and new
rows getting new ids.
"""

from __future__ import annotations

import itertools
import json
import os
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from flask_migrate import upgrade
from sqlalchemy import select

from blog import create_app
from blog.articles import draft_from, latest_revision, save_draft
from blog.extensions import db
from blog.models import Article, Revision, User

from . import conftest
from .conftest import ADMIN, AUTHOR, PASSWORD, _config, login, parse

_numbers = itertools.count()


@pytest.fixture
def sqlite_site(tmp_path: Path, template_databases: dict[str, conftest.Template]) -> Flask:
    """A demo site on SQLite (also under `make test-postgres`), with a row in every table."""
    source = tmp_path / "site.sqlite3"
    template = template_databases["demo"]
    app = create_app(_config(source), instance_path=str(tmp_path / "instance"))
    if isinstance(template, Path):
        source.write_bytes(template.read_bytes())
    else:  # the templates are PostgreSQL databases: build the SQLite demo the same way
        from blog.demo import load_demo

        with app.app_context():
            upgrade()
            load_demo()
            for user in db.session.scalars(select(User)):
                user.set_password(PASSWORD)
            db.session.commit()
    _use_every_table(app)
    return app


def _use_every_table(app: Flask) -> None:
    """Add what the demo lacks: a token and its idempotent answer, a sign-in, audit lines, and
    an edited draft whose newest revision is not the published one."""
    result = app.test_cli_runner().invoke(args=["token", "create", AUTHOR, "--name", "mover"])
    assert result.exit_code == 0, result.output
    token = result.stdout.strip().splitlines()[0]
    client = app.test_client()
    sent = client.post(
        "/api/drafts",
        data=json.dumps({"title": "Sent before the move", "body_markdown": "Quokka facts."}),
        headers={
            "Authorization": f"Bearer {token}",
            "Content-Type": "application/json",
            "Idempotency-Key": "move-1",
        },
    )
    assert sent.status_code == 201
    assert login(app.test_client(), AUTHOR).status_code == 302  # a sign-in row
    with app.app_context():
        published = db.session.scalar(select(Article).where(Article.published_at.is_not(None)))
        assert published is not None
        draft = draft_from(latest_revision(published))
        draft.body += "\nAn unpublished sentence about wombats.\n"
        save_draft(published, draft, published.author, editing_session="move", autosave=False)
        db.session.commit()


def _rows(app: Flask) -> dict[str, list[tuple]]:
    """Every row of every model table, in key order."""
    with app.app_context():
        rows = {}
        for table in db.metadata.sorted_tables:
            query = select(table).order_by(*table.primary_key.columns)
            rows[table.name] = [tuple(row) for row in db.session.execute(query)]
        db.session.remove()
        db.engine.dispose()
        return rows


def _text(element) -> str:  # noqa: ANN001 - a BeautifulSoup tag
    """An element's text as a reader sees it (highlight marks split words into pieces)."""
    return " ".join(element.get_text().split())


def _copy(site: Flask, url: str):  # noqa: ANN202 - a click Result
    return site.test_cli_runner().invoke(args=["copy-db", "--to", url])


def _served(url: str, tmp_path: Path) -> Iterator[Flask]:
    app = create_app(_config(url), instance_path=str(tmp_path / "copy-instance"))
    yield app
    with app.app_context():
        db.engine.dispose()


def _check_the_copy_serves_the_same_site(site: Flask, url: str, tmp_path: Path) -> None:
    before = _rows(site)
    for served in _served(url, tmp_path):
        after = _rows(served)
        assert {name: len(rows) for name, rows in after.items()} == {
            name: len(rows) for name, rows in before.items()
        }
        assert after == before  # every row, every revision, the same keys and values
        assert all(before[name] for name in ("users", "revisions", "api_tokens", "audit_log"))
        assert all(before[name] for name in ("idempotent_responses", "sign_ins"))

        client: FlaskClient = served.test_client()
        with served.app_context():
            published = db.session.scalars(
                select(Article).where(Article.published_at.is_not(None)).order_by(Article.id)
            ).all()
            drafts = db.session.scalar(select(Revision).where(Revision.body.contains("wombats")))
            assert drafts is not None  # the unpublished newer revision came along
            first = published[0]
            word = first.title.split()[0]
        home = parse(client.get("/"))
        assert {_text(a) for a in home.select(".card-title a")} <= {
            article.title for article in published
        }
        page = client.get(f"/articles/{first.slug}")
        assert page.status_code == 200 and first.title in page.get_data(as_text=True)
        found = parse(client.get("/", query_string={"q": word}))
        assert first.title in [_text(a) for a in found.select(".card-title a")]
        # The index holds the published text only, not the newer unpublished revision.
        assert parse(client.get("/", query_string={"q": "wombats"})).select(".card-title") == []

        # Sign-in works with the same password, and a new article gets a new id.
        writer = served.test_client()
        assert login(writer, ADMIN).status_code == 302
        created = writer.post("/studio/new", data={"title": "Written after the move", "body": "x"})
        assert created.status_code == 302
        with served.app_context():
            newest = db.session.scalar(select(Article).filter_by(title="Written after the move"))
            assert newest.id > max(row[0] for row in before["articles"])


def test_copy_into_a_new_sqlite_database(sqlite_site: Flask, tmp_path: Path):
    url = f"sqlite:///{tmp_path / 'moved.sqlite3'}"
    result = _copy(sqlite_site, url)
    assert result.exit_code == 0, result.output
    assert "counts match" in result.output
    _check_the_copy_serves_the_same_site(sqlite_site, url, tmp_path)


@pytest.fixture
def empty_postgres() -> str:
    """A new, empty PostgreSQL database (no schema at all) on the test server."""
    if not conftest.ON_POSTGRES:
        pytest.skip("needs PostgreSQL: runs in make test-postgres (TEST_DATABASE_URL)")
    name = f"moved_{conftest._RUN}_{next(_numbers)}"
    conftest._databases_to_drop.append(name)  # dropped after the test, with the others
    return conftest._create_postgres_database(name)


def test_copy_into_a_new_postgresql_database(
    sqlite_site: Flask, empty_postgres: str, tmp_path: Path
):
    result = _copy(sqlite_site, empty_postgres)
    assert result.exit_code == 0, result.output
    assert "counts match" in result.output
    _check_the_copy_serves_the_same_site(sqlite_site, empty_postgres, tmp_path)


def test_a_database_that_holds_anything_is_refused(sqlite_site: Flask, tmp_path: Path):
    url = f"sqlite:///{tmp_path / 'moved.sqlite3'}"
    assert _copy(sqlite_site, url).exit_code == 0
    again = _copy(sqlite_site, url)
    assert again.exit_code == 1
    assert "is not empty" in again.output and "articles" in again.output

    foreign = tmp_path / "foreign.sqlite3"
    with sqlite3.connect(foreign) as connection:
        connection.execute("CREATE TABLE invoices (id INTEGER PRIMARY KEY)")
    refused = _copy(sqlite_site, f"sqlite:///{foreign}")
    assert refused.exit_code == 1 and "other tables (invoices)" in refused.output


def test_a_copy_into_a_target_another_copy_is_filling_is_a_clear_error(
    sqlite_site: Flask, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    # Two copy-db runs into one empty target: the second passed the emptiness check, waited for
    # the first, then died with an IntegrityError traceback.
    from blog import copydb

    target = tmp_path / "raced.sqlite3"
    first = _copy(sqlite_site, f"sqlite:///{target}")
    assert first.exit_code == 0
    checked = copydb._check_empty
    monkeypatch.setattr(copydb, "_check_empty", lambda engine, shown: None)  # as if still empty
    raced = _copy(sqlite_site, f"sqlite:///{target}")
    monkeypatch.setattr(copydb, "_check_empty", checked)
    assert raced.exit_code == 1, raced.output
    assert "Traceback" not in raced.output and "IntegrityError" not in raced.output
    assert "written to while this copy ran" in raced.output
    with sqlite3.connect(target) as connection:  # the first copy is whole
        assert connection.execute("SELECT count(*) FROM articles").fetchone()[0] > 0


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("not a url", "is not a database URL"),
        ("mysql://someone@host/blog", "into PostgreSQL or SQLite"),
        ("sqlite://", "in-memory"),
        ("postgresql+psycopg://nobody@127.0.0.1:1/blog", "cannot connect to"),
        # The URLs Heroku and Render hand out are PostgreSQL through psycopg, like the above.
        ("postgres://nobody@127.0.0.1:1/blog", "cannot connect to"),
        ("postgresql://nobody@127.0.0.1:1/blog", "cannot connect to"),
    ],
)
def test_a_bad_or_unreachable_target_is_a_clear_error(sqlite_site: Flask, url: str, message: str):
    result = _copy(sqlite_site, url)
    assert result.exit_code == 1
    assert message in result.output and "Traceback" not in result.output


def test_copying_onto_itself_is_refused(sqlite_site: Flask):
    url = sqlite_site.config["SQLALCHEMY_DATABASE_URI"]
    result = _copy(sqlite_site, url)
    assert result.exit_code == 1 and "the site's own database" in result.output


def test_the_copy_leaves_the_source_as_it_was(sqlite_site: Flask, tmp_path: Path):
    before = _rows(sqlite_site)
    assert _copy(sqlite_site, f"sqlite:///{tmp_path / 'moved.sqlite3'}").exit_code == 0
    assert _rows(sqlite_site) == before
    assert os.path.exists(tmp_path / "moved.sqlite3")
