"""Rules every database follows alike: the same input stores the same text on both."""

from __future__ import annotations

import pytest
from sqlalchemy import insert, select

from blog.database import IN_LIST_MAX, in_chunks, normalise_database_url
from blog.extensions import db
from blog.models import Article, Revision, Tag

from .conftest import AUTHOR, parse


def test_nul_characters_never_reach_the_database(app, client, runner):
    """PostgreSQL cannot store U+0000 at all: it is dropped on the way in, on every database."""
    token = runner.invoke(args=["token", "create", AUTHOR]).stdout.strip()
    draft = {
        "title": "Zero\x00 byte",
        "summary": "A\x00B",
        "category": "Back\x00end",
        "tags": ["N\x00UL"],
        "body_markdown": "Text with a \x00 in it.\n",
        "ai_model": "test-model",
    }
    sent = client.post("/api/drafts", json=draft, headers={"Authorization": f"Bearer {token}"})
    assert sent.status_code == 201, sent.json
    with app.app_context():
        article = db.session.get(Article, sent.json["id"])
        revision = db.session.scalar(select(Revision).filter_by(article_id=article.id))
        assert (article.title, revision.title, revision.summary) == ("Zero byte", "Zero byte", "AB")
        assert revision.body == "Text with a  in it.\n" and revision.tags == "NUL"
        assert article.category.name == "Backend"


def test_a_nul_in_the_address_is_an_ordinary_answer(client):
    for query in ("q=k%00ube", "category=%00", "tag=py%00thon", "q=%00"):
        response = client.get(f"/?{query}")
        assert response.status_code == 200, query
        assert parse(response).select_one("#results") is not None


def test_a_multi_row_insert_loses_its_nul_too(app):
    """Many rows go as one INSERT … VALUES (…), (…) whose parameters are one set, not a list.

    On PostgreSQL the NUL filter once took that set for a list of rows and broke every such
    insert: the importer's batches all failed there and were written again one file at a time.
    """
    rows = [{"slug": f"nul-{n}", "name": f"N\x00UL {n}"} for n in range(3)]
    with app.app_context():
        tags = Tag.__table__
        inserted = db.session.execute(insert(tags).returning(tags.c.slug, tags.c.name), rows)
        assert sorted(inserted.all()) == [
            ("nul-0", "NUL 0"),
            ("nul-1", "NUL 1"),
            ("nul-2", "NUL 2"),
        ]


def test_a_long_in_list_is_split_into_lists_every_database_binds(app):
    """SQLite before 3.32 refused a statement with over 999 bound parameters."""
    slugs = [f"tag-{n}" for n in range(2 * IN_LIST_MAX + 1)]
    with app.app_context():
        db.session.execute(insert(Tag), [{"slug": slug, "name": slug} for slug in slugs])
        chunks = list(in_chunks(slugs))
        assert [len(chunk) for chunk in chunks] == [IN_LIST_MAX, IN_LIST_MAX, 1]
        found = [
            s
            for chunk in chunks
            for s in db.session.scalars(select(Tag.slug).where(Tag.slug.in_(chunk)))
        ]
        assert sorted(found) == sorted(slugs)


@pytest.mark.parametrize(
    ("given", "used"),
    [
        # Heroku's and Render's scheme, which SQLAlchemy does not know at all...
        ("postgres://user@host/db", "postgresql+psycopg://user@host/db"),
        # ...and the bare one, which SQLAlchemy before 2.1 reads as psycopg2 (not installed).
        ("postgresql://user@host/db", "postgresql+psycopg://user@host/db"),
        (
            "postgres://user:p%40ss@host:5433/db?sslmode=require",
            "postgresql+psycopg://user:p%40ss@host:5433/db?sslmode=require",
        ),
        # A driver named on purpose, another database, or no URL at all: left as it is.
        ("postgresql+psycopg2://user@host/db", "postgresql+psycopg2://user@host/db"),
        ("postgresql+psycopg://user@host/db", "postgresql+psycopg://user@host/db"),
        ("sqlite:////srv/blog/blog.sqlite3", "sqlite:////srv/blog/blog.sqlite3"),
        ("not a url", "not a url"),
    ],
)
def test_postgres_urls_without_a_driver_get_psycopg(given, used):
    assert normalise_database_url(given) == used
