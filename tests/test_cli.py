"""The command line: init-db, users and backups."""

from __future__ import annotations

import sqlite3

import pytest
from sqlalchemy import select, text

from blog import create_app
from blog.extensions import db
from blog.models import User

from .conftest import parse, postgres_only, sqlite_only


def test_init_db_is_safe_to_run_again(runner):
    result = runner.invoke(args=["init-db", "--demo"])
    assert result.exit_code == 0, result.output
    assert "Database ready" in result.output and "Loaded" not in result.output
    assert "has articles already, so the demo was not loaded" in result.output


def test_init_db_demo_on_an_empty_database(empty_app):
    result = empty_app.test_cli_runner().invoke(args=["init-db", "--demo"])
    assert result.exit_code == 0, result.output
    assert "Loaded 8 demo articles." in result.output
    assert "dennis@example.com  password: " in result.output
    with empty_app.app_context():
        reviewer = db.session.scalar(select(User).filter_by(email="dennis@example.com"))
        assert reviewer.name == "Dennis Atonya" and reviewer.is_admin
    # The passwords printed are the ones that work, and they stay the same on the next run.
    again = empty_app.test_cli_runner().invoke(args=["init-db", "--demo"])
    line = next(x for x in result.output.splitlines() if "dennis@example.com" in x)
    assert line in again.output
    password = line.split("password: ")[1].strip()
    with empty_app.app_context():
        assert db.session.scalar(select(User).filter_by(email="dennis@example.com")).check_password(
            password
        )


def test_init_db_demo_does_not_print_a_password_changed_since(empty_app):
    """The demo's generated password stays in its file; once changed it no longer signs in."""
    runner = empty_app.test_cli_runner()
    assert runner.invoke(args=["init-db", "--demo"]).exit_code == 0
    changed = runner.invoke(
        args=["user", "set-password", "maya@example.com"], input="a new password 1\n" * 2
    )
    assert changed.exit_code == 0, changed.output
    result = runner.invoke(args=["init-db", "--demo"])
    assert result.exit_code == 0, result.output
    maya = next(x for x in result.output.splitlines() if "maya@example.com" in x)
    assert maya.split("maya@example.com")[1].strip() == (
        "password: changed since the demo was loaded (not shown)"
    )
    dennis = next(x for x in result.output.splitlines() if "dennis@example.com" in x)
    password = dennis.split("password: ")[1].strip()
    with empty_app.app_context():
        reviewer = db.session.scalar(select(User).filter_by(email="dennis@example.com"))
        assert reviewer.check_password(password)  # unchanged: still printed, still right


def test_user_create_list_and_deactivate(app, runner):
    result = runner.invoke(
        args=[
            "user",
            "create",
            "Ana@Example.com",
            "--name",
            "Ana",
            "--role",
            "admin",
            "--password",
            "long enough pw",
        ]
    )
    assert result.exit_code == 0, result.output
    listing = runner.invoke(args=["user", "list"]).output
    assert "ana@example.com\tAna\tadmin\tactive" in listing
    assert runner.invoke(args=["user", "deactivate", "ana@example.com"]).exit_code == 0
    assert "ana@example.com\tAna\tadmin\tdeactivated" in runner.invoke(args=["user", "list"]).output


def test_user_create_prompts_for_the_password(runner):
    result = runner.invoke(
        args=["user", "create", "bo@example.com", "--name", "Bo"],
        input="s3cret-pass\ns3cret-pass\n",
    )
    assert result.exit_code == 0, result.output


def test_user_create_refuses_bad_input(runner):
    duplicate = runner.invoke(
        args=["user", "create", "maya@example.com", "--name", "M", "--password", "long enough"]
    )
    assert duplicate.exit_code != 0 and "already has an account" in duplicate.output
    short = runner.invoke(
        args=["user", "create", "x@example.com", "--name", "X", "--password", "x"]
    )
    assert short.exit_code != 0 and "at least 8" in short.output
    unknown = runner.invoke(args=["user", "deactivate", "nobody@example.com"])
    assert unknown.exit_code != 0 and "no account" in unknown.output


@sqlite_only
def test_backup_is_a_consistent_copy(app, runner, tmp_path):
    target = tmp_path / "copy.sqlite3"
    result = runner.invoke(args=["backup", str(target)])
    assert result.exit_code == 0, result.output
    copy = sqlite3.connect(target)
    assert copy.execute("select count(*) from articles").fetchone()[0] == 8
    assert copy.execute("select count(*) from articles_fts_entries").fetchone()[0] == 8
    again = runner.invoke(args=["backup", str(target)])
    assert again.exit_code != 0 and "exists already" in again.output


@postgres_only
def test_backup_on_postgresql_says_to_use_pg_dump(runner, tmp_path):
    result = runner.invoke(args=["backup", str(tmp_path / "copy")])
    assert result.exit_code != 0 and "pg_dump --format=custom" in result.output
    assert not (tmp_path / "copy").exists()


def test_rerender_refreshes_html_and_the_index(app, runner):
    from blog.models import Article

    with app.app_context():
        article = db.session.get(Article, 1)
        article.body_html = "<p>stale</p>"
        db.session.execute(sqlite_delete_fts())
        db.session.commit()
    result = runner.invoke(args=["rerender"])
    assert (
        result.exit_code == 0
        and "Rendered 8 articles again; 0 had their category or tags set again from the "
        "approved text; 0 revisions had their images listed again; 8 in the search index."
        in result.output
    )
    with app.app_context():
        assert "stale" not in db.session.get(Article, 1).body_html


def test_rerender_sets_categories_and_tags_again_from_the_approved_text(
    app, runner, client, make_article
):
    """Before 0011 "C#" found the row of "C++" (both were "c"): rerender sets that right."""
    from blog.models import Article

    templates = make_article("Templates", category="C++", tags=["C++"])
    records = make_article("Records", category="C#", tags=["C#"])
    with app.app_context():
        wrong = db.session.get(Article, templates)
        article = db.session.get(Article, records)
        article.category_id = wrong.category_id  # as the old slugs left it
        for link, shared in zip(article.tag_links, wrong.tag_links, strict=True):
            link.tag_id = shared.tag_id
        db.session.commit()
    assert "C++" in client.get("/articles/records").get_data(as_text=True)

    result = runner.invoke(args=["rerender"])
    assert result.exit_code == 0
    assert "1 had their category or tags set again from the approved text" in result.output
    page = parse(client.get("/articles/records"))
    assert page.select_one(".post-header .eyebrow").get_text(strip=True) == "C#"
    assert [a.get_text(strip=True) for a in page.select(".post-header .tags a")] == ["C#"]


def test_rerender_lists_each_revisions_images_again(app, runner, make_article):
    """A revision written by a server on an older release has no image rows: where_used, and so
    the delete check, would call its images unused. rerender lists them again from the text."""
    from sqlalchemy import delete, insert

    from blog.models import Revision, RevisionImage

    shown, other = "a" * 64, "b" * 64
    shows = make_article("Shows one", body=f"![chart](/media/{shown}.png)\n")
    plain = make_article("Shows none")
    with app.app_context():
        first = {
            a: db.session.scalar(select(Revision.id).filter_by(article_id=a))
            for a in (shows, plain)
        }
        db.session.execute(delete(RevisionImage))  # as an older release wrote them
        db.session.execute(insert(RevisionImage), [{"revision_id": first[plain], "sha256": other}])
        db.session.commit()
    result = runner.invoke(args=["rerender"])
    assert result.exit_code == 0 and "2 revisions had their images listed again" in result.output
    with app.app_context():
        rows = db.session.execute(select(RevisionImage.revision_id, RevisionImage.sha256)).all()
    assert [tuple(row) for row in rows] == [(first[shows], shown)]
    assert "0 revisions had their images listed again" in runner.invoke(args=["rerender"]).output


def sqlite_delete_fts():  # noqa: ANN201
    from sqlalchemy import delete

    from blog.search.sqlite_fts import fts

    return delete(fts)


def test_import_command_reports_and_exits_non_zero_on_a_bad_file(runner):
    from pathlib import Path

    tree = Path(__file__).parent / "fixtures" / "import"
    result = runner.invoke(args=["import", str(tree / "hugo"), str(tree / "jekyll")])
    assert result.exit_code == 1
    assert "broken.md:4:" in result.output
    assert "created" in result.output and "1 error" in result.output.splitlines()[-1]
    again = runner.invoke(args=["import", str(tree / "hugo"), str(tree / "jekyll")])
    assert "0 created, 0 updated" in again.output.splitlines()[-1]


def test_token_create_for_an_unknown_account(runner):
    result = runner.invoke(args=["token", "create", "nobody@example.com"])
    assert result.exit_code != 0 and "no active account" in result.output


@pytest.mark.parametrize(
    "args",
    [
        ["import", "posts"],
        [
            "user",
            "create",
            "a@example.com",
            "--name",
            "A",
            "--role",
            "admin",
            "--password",
            "x" * 16,
        ],
        ["user", "list"],
        ["token", "create", "a@example.com"],
    ],
)
def test_a_database_never_initialised_is_said_in_one_line(tmp_path, args):
    app = create_app(
        {"SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'new.sqlite3'}", "SECRET_KEY": "x"},
        instance_path=str(tmp_path / "instance"),
    )
    result = app.test_cli_runner().invoke(args=args)
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit)  # not a crash
    assert "has no tables yet" in result.output and "init-db" in result.output


@pytest.mark.parametrize(
    ("revision", "words"),
    [("0008", "run `flask --app app init-db` to upgrade it"), ("9999", "a newer release made")],
)
def test_a_database_at_another_schema_is_said_in_one_line(app, runner, revision, words):
    with app.app_context():
        db.session.execute(text("UPDATE alembic_version SET version_num = :v"), {"v": revision})
        db.session.commit()
    result = runner.invoke(args=["user", "list"])
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit)
    assert f"is at schema {revision}" in result.output and words in result.output


def test_a_database_that_cannot_be_reached_is_said_in_one_line(tmp_path):
    url = f"sqlite:///{tmp_path / 'no-such-folder' / 'blog.sqlite3'}"
    app = create_app(
        {"SQLALCHEMY_DATABASE_URI": url, "SECRET_KEY": "x"}, instance_path=str(tmp_path)
    )
    result = app.test_cli_runner().invoke(args=["user", "list"])
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit)
    assert "cannot reach the database" in result.output
