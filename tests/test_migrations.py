"""The migrations build exactly the schema the models describe."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from blog.extensions import db

from .conftest import sqlite_only


def test_migrations_match_the_models(app, ctx):
    with db.engine.connect() as connection:
        context = MigrationContext.configure(
            connection,
            opts={
                "include_object": lambda obj, name, type_, *a: not name.startswith("articles_fts")
            },
        )
        assert compare_metadata(context, db.metadata) == []


@sqlite_only
def test_sqlite_runs_in_wal_with_foreign_keys(app, ctx):
    with db.engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert connection.exec_driver_sql("PRAGMA busy_timeout").scalar() == 10_000


def test_migrations_go_down_and_up_again_with_data_in_the_tables(app, ctx, client):
    """Batch migrations rebuild tables; with data and foreign keys in place they must still work."""
    from flask_migrate import downgrade, upgrade

    def state() -> tuple[int, int, int]:
        with db.engine.connect() as connection:
            return tuple(
                connection.exec_driver_sql(f"SELECT count(*) FROM {table}").scalar()
                for table in ("articles", "revisions", "review_events")
            )

    before = state()
    for target in ("0003", "0002", "0001"):
        downgrade(revision=target)
    upgrade()
    assert state() == before
    if db.engine.dialect.name == "sqlite":  # PostgreSQL never turns its foreign keys off
        with db.engine.connect() as connection:
            assert connection.execute(text("PRAGMA foreign_key_check")).all() == []
            assert connection.execute(text("PRAGMA foreign_keys")).scalar() == 1
    assert client.get("/").status_code == 200


def test_categories_and_tags_get_the_slugs_their_names_are_now_found_by(app, ctx):
    """0011: "C++" was "c"; it is "c-plus-plus" now, unless another row has that slug."""
    from flask_migrate import downgrade, upgrade

    downgrade(revision="0010")
    with db.engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO categories (slug, name, position) VALUES"
                " ('c', 'C++', 90), ('f', 'F#', 91), ('node-js', 'Node.js', 92)"
            )
        )
        connection.execute(
            text(
                "INSERT INTO tags (slug, name) VALUES ('notepad', 'Notepad++'),"
                " ('c-sharp', 'C sharp'), ('c-2', 'C#')"
            )
        )
    upgrade()
    with db.engine.connect() as connection:
        slugs = dict(connection.execute(text("SELECT name, slug FROM categories")).all())
        slugs |= dict(connection.execute(text("SELECT name, slug FROM tags")).all())
    assert slugs["C++"] == "c-plus-plus" and slugs["F#"] == "f-sharp"
    assert slugs["Node.js"] == "node-js" and slugs["Notepad++"] == "notepad-plus-plus"
    assert slugs["C#"] == "c-2"  # "c-sharp" is another tag's: it keeps its own


def _image_rows_from_0011_on() -> list[tuple[int, str]]:
    """Go back to before revision_images, migrate to the head, and return (article, hash) rows."""
    from flask_migrate import downgrade, upgrade

    downgrade(revision="0011")
    upgrade()
    with db.engine.connect() as connection:
        return connection.execute(
            text(
                "SELECT r.article_id, i.sha256 FROM revision_images i"
                " JOIN revisions r ON r.id = i.revision_id"
            )
        ).all()


def test_revisions_already_written_get_the_image_hashes_their_texts_name(app, ctx, make_article):
    """0012: where an image is used is looked up by hash, so the existing texts are read once."""
    digest, other = "a" * 64, "b" * 64
    shows = make_article("Shows one", body=f"![chart](/media/{digest}.png)\n")
    spelled = make_article("Spells it", body=f"![chart](&sol;media\\/{other}-640.webp)\n")
    plain = make_article("Names none", body=f"A checksum: {digest}\n")
    rows = _image_rows_from_0011_on()
    assert sorted(rows) == [(shows, digest), (spelled, other)]
    assert plain not in {article_id for article_id, _digest in rows}


def test_revisions_already_written_get_the_image_hashes_their_percent_encoded_links_name(
    app, ctx, make_article
):
    """0013: a browser decodes `/media/%61…`, so 0012's rule missed images linked that way."""
    digest, other, third = "a" * 64, "b" * 64, "c" * 64
    shows = make_article("Shows one", body=f"![chart](/media/{digest}.png)\n")
    encoded = make_article("Links one", body=f"[chart](/%6Dedia/%62{other[1:]}.png)\n")
    referenced = make_article("Spells the %", body=f"[chart](/media/&#x25;63{third[1:]}.png)\n")
    plain = make_article("Names none", body="100% sure, and %6D is not a link.\n")
    rows = _image_rows_from_0011_on()
    assert {(shows, digest), (encoded, other), (referenced, third)} <= set(rows)
    assert plain not in {article_id for article_id, _digest in rows}


_MEDIA_ROW = (
    "INSERT INTO media (sha256, ext, width, height, bytes, widths, uploaded_by_id, created_at)"
    " VALUES (:sha, 'png', 10, 10, 100, '', :who, '2026-12-01 10:00:00')"
)


def _add_media(*rows: tuple[str, int | None]) -> None:
    """Insert media rows by SQL (the model may be ahead of the schema): (hash, uploader)."""
    with db.engine.begin() as connection:
        for sha, who in rows:
            connection.execute(text(_MEDIA_ROW), {"sha": sha, "who": who})


def _media_rows(columns: str = "sha256, uploaded_by_id") -> list[tuple]:
    with db.engine.connect() as connection:
        query = f"SELECT {columns} FROM media ORDER BY id"
        return [tuple(row) for row in connection.execute(text(query))]


def test_media_rows_stay_as_the_picture_becomes_unique_per_uploader(app, ctx, make_user):
    """0014: one row per person's upload; going back keeps each picture's first row."""
    from flask_migrate import downgrade, upgrade

    bob = make_user("bob@example.com", "Bob")
    a, b = "a" * 64, "b" * 64
    downgrade(revision="0013")
    _add_media((a, None), (b, bob.id))
    upgrade()
    assert _media_rows() == [(a, None), (b, bob.id)]
    _add_media((b, None))  # the same picture, another uploader: a row each
    downgrade(revision="0013")
    assert _media_rows() == [(a, None), (b, bob.id)]
    upgrade()
    assert _media_rows() == [(a, None), (b, bob.id)]


def test_an_imports_pictures_keep_to_one_row_each(app, ctx, make_user):
    """0015: rows without an uploader doubled by two imports at once are merged into the first."""
    from flask_migrate import downgrade, upgrade

    bob = make_user("bob@example.com", "Bob")
    a, b = "a" * 64, "b" * 64
    downgrade(revision="0014")
    _add_media((a, None), (a, None), (a, bob.id), (b, None), (a, None))
    first = _media_rows("id, sha256, uploaded_by_id")
    upgrade()
    assert _media_rows("id, sha256, uploaded_by_id") == [first[0], first[2], first[3]]
    with pytest.raises(IntegrityError):
        _add_media((b, None))
    downgrade(revision="0014")
    _add_media((b, None))  # without the index, NULLs differ again
    assert len(_media_rows()) == 4
