"""The Markdown importer: Hugo and Jekyll trees, re-imports, the review queue and bad files."""

from __future__ import annotations

import gc
import os
import shutil
import signal
import textwrap
from datetime import UTC, datetime, timedelta
from pathlib import Path
from subprocess import PIPE, Popen

import pytest
from flask import Flask
from sqlalchemy import func, select, text

from blog.articles import latest_revision, publish
from blog.extensions import db
from blog.importer import (
    NO_ADMIN,
    NO_ADMIN_NOTE,
    ImportBlocked,
    ImportFailure,
    ImportReport,
    _prepare,
    import_paths,
)
from blog.media_views import where_used
from blog.models import Article, Media, ReviewEvent, Revision, Role, Status, User
from tests.conftest import _make_app, parse, postgres_only, sqlite_only

FIXTURES = Path(__file__).parent / "fixtures" / "import"
HUGO_POSTS = Path("hugo/content/posts")


@pytest.fixture
def trees(tmp_path: Path) -> Path:
    """A copy of the sample Hugo and Jekyll trees that a test may edit."""
    target = tmp_path / "import"
    shutil.copytree(FIXTURES, target)
    return target


def run(app: Flask, *paths: Path, author: str | None = None) -> ImportReport:
    """Import inside an app context, as the given e-mail's account or the default owner."""
    with app.app_context():
        user = db.session.scalar(select(User).filter_by(email=author)) if author else None
        return import_paths(list(paths), author=user)


def write(folder: Path, name: str, text: str) -> Path:
    """Write a Markdown file (dedented) and return its path."""
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return path


def find(slug: str) -> Article:
    """Return the article with this slug (inside an app context)."""
    article = db.session.scalar(select(Article).filter_by(slug=slug))
    assert article is not None, slug
    return article


def revisions(article: Article) -> list[Revision]:
    return list(
        db.session.scalars(
            select(Revision).filter_by(article_id=article.id).order_by(Revision.number)
        )
    )


def submits(article: Article) -> list[ReviewEvent]:
    return list(db.session.scalars(select(ReviewEvent).filter_by(article_id=article.id)))


def add_account(app: Flask, email: str, name: str, role: Role) -> None:
    with app.app_context():
        user = User(email=email, name=name, role=role)
        user.set_password("long enough pw")
        db.session.add(user)
        db.session.commit()


def errors(report: ImportReport) -> list[tuple[str, int | None, str]]:
    return [(failure.path.name, failure.line, failure.message) for failure in report.errors]


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)


def test_sample_trees_import_and_report_the_broken_file(app, trees):
    report = run(app, trees / "hugo", trees / "jekyll")

    assert report.summary() == "6 created, 0 updated, 1 skipped, 1 error"
    assert sorted(entry.slug for entry in report.created) == [
        "bundle-post",
        "oauth-pitfalls",
        "toml-post",
        "unfinished-idea",
        "vacuum-notes",
        "yaml-post",
    ]
    [section] = report.skipped
    assert section.path == trees / HUGO_POSTS / "_index.md" and "section page" in section.reason
    # The broken file is named, with the line of the bad YAML, like a compiler would.
    assert [str(e) for e in report.errors] == [
        f"{trees / HUGO_POSTS / 'broken.md'}:4: YAML front matter: mapping values are not "
        "allowed here"
    ]
    # Files starting with _ (templates, partials) are not posts and are not even mentioned.
    everything = report.created + report.updated + report.skipped
    assert not any(e.path.name == "_template.md" for e in everything + report.errors)

    with app.app_context():
        dennis = db.session.scalar(select(User).filter_by(email="dennis@example.com"))
        maya = db.session.scalar(select(User).filter_by(email="maya@example.com"))

        # Hugo, YAML: a zoned time, `description`, a categories list (the first one counts).
        yaml_post = find("yaml-post")
        assert yaml_post.status == Status.PUBLISHED and yaml_post.is_public()
        assert yaml_post.published_at == yaml_post.created_at == utc(2025, 4, 20, 7, 30)
        assert yaml_post.summary == "Why the pool size matters more than the worker count."
        assert yaml_post.category.name == "Backend"
        assert [t.name for t in yaml_post.tags] == ["Flask", "SQLAlchemy", "Performance"]
        assert yaml_post.author == dennis and yaml_post.reviewed_by == dennis  # the first admin
        assert not yaml_post.ai_generated
        [revision] = revisions(yaml_post)
        assert revision.kind == "import" and revision.note == "imported from yaml-post.md"
        assert revision.body.startswith("A pool that is too small")

        # Hugo, TOML: AI-generated, so it waits for review.
        toml_post = find("toml-post")
        assert toml_post.status == Status.IN_REVIEW and not toml_post.is_public()
        assert toml_post.ai_generated and toml_post.ai_model == "claude-sonnet-4-5"
        assert toml_post.created_at == utc(2025, 3, 1, 13) and toml_post.published_at is None
        assert toml_post.category.name == "DevOps" and toml_post.summary.startswith("Two env")
        [original] = revisions(toml_post)
        assert original.kind == "ai_original"
        [event] = submits(toml_post)
        assert (event.action, event.revision_id, event.actor) == ("submit", original.id, dennis)
        assert event.comment == "Imported from toml-post.md"

        # A Hugo page bundle is named after its folder; `draft: true` stays a draft.
        bundle = find("bundle-post")
        assert bundle.status == Status.DRAFT and not bundle.is_public()
        assert bundle.created_at == utc(2025, 2, 10) and bundle.category.name == "Database"
        assert revisions(bundle)[0].note == "imported from bundle-post/index.md"

        # Jekyll: the date and slug from the file name, `categories` and `tags` as strings, and
        # the owner found by the front matter's `author` e-mail.
        oauth = find("oauth-pitfalls")
        assert oauth.status == Status.PUBLISHED and oauth.is_public()
        assert oauth.published_at == oauth.created_at == utc(2025, 4, 18)
        assert oauth.category.name == "Security"
        assert [t.slug for t in oauth.tags] == ["oauth", "oidc", "jwt"]  # "JWT" is the demo's
        assert oauth.author == maya

        # A Jekyll-style "2025-05-02 14:15:00 +0200" date wins over the file name's.
        vacuum = find("vacuum-notes")
        assert vacuum.status == Status.IN_REVIEW and vacuum.ai_model == "gpt-4o"
        assert vacuum.created_at == utc(2025, 5, 2, 12, 15)
        assert vacuum.category.name == "Database"

        # Jekyll's _drafts folder holds drafts even without `draft: true`.
        assert find("unfinished-idea").status == Status.DRAFT


def test_human_non_draft_is_public_and_the_others_are_not(app, client, trees):
    run(app, trees / "hugo", trees / "jekyll")

    page = client.get("/articles/yaml-post")
    assert page.status_code == 200
    soup = parse(page)
    assert soup.find("h1").get_text(strip=True) == "Connection Pooling in Flask"
    assert soup.find("h2", id="sec-sizing") is not None  # the body is rendered Markdown
    assert "A pool that is too small" in soup.get_text()
    assert client.get("/articles/oauth-pitfalls").status_code == 200
    for hidden in ("toml-post", "vacuum-notes", "bundle-post", "unfinished-idea"):
        assert client.get(f"/articles/{hidden}").status_code == 404, hidden


def test_reimporting_unchanged_files_skips_them_all(app, trees):
    run(app, trees / "hugo", trees / "jekyll")
    with app.app_context():
        before = db.session.scalar(select(func.count()).select_from(Revision))
        events = db.session.scalar(select(func.count()).select_from(ReviewEvent))

    again = run(app, trees / "hugo", trees / "jekyll")

    assert again.summary() == "0 created, 0 updated, 7 skipped, 1 error"
    assert {e.reason for e in again.skipped if e.slug} == {"unchanged"}
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Revision)) == before
        assert db.session.scalar(select(func.count()).select_from(ReviewEvent)) == events


def test_reimporting_an_edited_human_file_publishes_a_new_revision(app, client, trees):
    run(app, trees / "hugo", trees / "jekyll")
    post = trees / HUGO_POSTS / "yaml-post.md"
    post.write_text(post.read_text().replace("too small", "far too small"))

    again = run(app, trees / "hugo", trees / "jekyll")

    assert again.summary() == "0 created, 1 updated, 6 skipped, 1 error"
    assert [(e.slug, e.status) for e in again.updated] == [("yaml-post", Status.PUBLISHED)]
    with app.app_context():
        article = find("yaml-post")
        first, second = revisions(article)
        assert "far too small" not in first.body and first.kind == "import"
        assert "far too small" in second.body and second.kind == "import"
        assert article.published_revision_id == second.id
        assert article.published_at == utc(2025, 4, 20, 7, 30)  # the original date stays
    assert "far too small" in parse(client.get("/articles/yaml-post")).get_text()


def test_reimporting_an_edited_ai_file_goes_back_to_review(app, client, trees):
    toml_post = trees / HUGO_POSTS / "toml-post.md"
    run(app, toml_post)
    with app.app_context():
        # An admin approves the original.
        dennis = db.session.scalar(select(User).filter_by(email="dennis@example.com"))
        article = find("toml-post")
        publish(article, revisions(article)[0], dennis, publish_at=utc(2025, 3, 2))
        article.status = Status.PUBLISHED
        db.session.commit()
    toml_post.write_text(toml_post.read_text().replace("two production", "two identical"))

    report = run(app, toml_post)

    assert [(e.slug, e.status) for e in report.updated] == [("toml-post", Status.IN_REVIEW)]
    with app.app_context():
        article = find("toml-post")
        original, edit = revisions(article)
        assert original.kind == "ai_original" and "two production" in original.body
        assert edit.kind == "import" and "two identical" in edit.body
        # The approved text stays public until an admin approves the new revision.
        assert article.status == Status.IN_REVIEW
        assert article.published_revision_id == original.id and "two production" in article.body
        assert [(e.action, e.revision_id) for e in submits(article)] == [
            ("submit", original.id),
            ("submit", edit.id),
        ]
    assert "two production" in parse(client.get("/articles/toml-post")).get_text()


def test_ai_file_goes_to_review_even_when_marked_as_a_draft(app, tmp_path):
    write(
        tmp_path,
        "ai-draft.md",
        """
        ---
        title: An AI Draft
        draft: true
        ai_generated: true
        ---
        Generated text.
        """,
    )
    report = run(app, tmp_path)
    assert [(e.slug, e.status) for e in report.created] == [("ai-draft", Status.IN_REVIEW)]
    with app.app_context():
        assert [e.action for e in submits(find("ai-draft"))] == ["submit"]


def test_clearing_draft_publishes_the_unchanged_text(app, client, trees):
    run(app, trees / "hugo")
    bundle = trees / HUGO_POSTS / "bundle-post" / "index.md"
    bundle.write_text(bundle.read_text().replace("draft: true", "draft: false"))

    report = run(app, trees / "hugo")

    assert [(e.slug, e.status) for e in report.updated] == [("bundle-post", Status.PUBLISHED)]
    with app.app_context():
        article = find("bundle-post")
        assert len(revisions(article)) == 1 and article.published_at == utc(2025, 2, 10)
    assert client.get("/articles/bundle-post").status_code == 200


def test_a_live_article_whose_file_says_draft_is_reported_as_still_live(app, client, tmp_path):
    # The report said "draft" while readers still had the published text: both are true.
    write(tmp_path, "live.md", "---\ntitle: Live\n---\nFirst words.\n")
    run(app, tmp_path)
    write(tmp_path, "live.md", "---\ntitle: Live\ndraft: true\n---\nSecond words.\n")
    report = run(app, tmp_path)
    [entry] = report.updated
    assert entry.status == Status.DRAFT
    assert str(entry).endswith("draft (the published version stays live)")
    assert "First words." in client.get("/articles/live").get_data(as_text=True)


def test_a_future_date_schedules_the_article(app, client, tmp_path):
    when = (datetime.now(UTC) + timedelta(days=3)).replace(microsecond=0)
    write(tmp_path, "later.md", f"---\ntitle: Later\ndate: {when.isoformat()}\n---\nSoon.\n")
    report = run(app, tmp_path)
    assert [(e.slug, e.status) for e in report.created] == [("later", Status.SCHEDULED)]
    with app.app_context():
        assert find("later").published_at == when
    assert client.get("/articles/later").status_code == 404


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2025-04-20", utc(2025, 4, 20)),
        ('"2025-04-20"', utc(2025, 4, 20)),
        ("2025-04-20T09:30:00+02:00", utc(2025, 4, 20, 7, 30)),
        ('"2025-04-20T09:30:00Z"', utc(2025, 4, 20, 9, 30)),
        ("2025-04-20 09:30:00 +0200", utc(2025, 4, 20, 7, 30)),
        ('"2025-04-20 09:30 -0500"', utc(2025, 4, 20, 14, 30)),
        ("2025-04-20 09:30:00", utc(2025, 4, 20, 9, 30)),  # naive: taken as UTC
        # The forms Jekyll accepts (quoted, as Jekyll sites write them).
        ('"2023-01-29 18:30:22 2023 -0800"', utc(2023, 1, 30, 2, 30, 22)),
        ('"2023-1-9 8:05 UTC"', utc(2023, 1, 9, 8, 5)),
        ('"2023-01-29 18:30:22 +05:30"', utc(2023, 1, 29, 13, 0, 22)),
    ],
)
def test_dates_are_stored_as_utc(app, tmp_path, value, expected):
    write(tmp_path, "dated.md", f"---\ntitle: Dated\ndate: {value}\ndraft: true\n---\nText.\n")
    assert run(app, tmp_path).summary() == "1 created, 0 updated, 0 skipped, 0 errors"
    with app.app_context():
        assert find("dated").created_at == expected


def test_toml_dates_and_errors(app, tmp_path):
    write(
        tmp_path,
        "toml-dates.md",
        """
        +++
        title = "TOML Dates"
        date = 2025-04-20T09:30:00
        draft = true
        +++
        Text.
        """,
    )
    write(tmp_path, "toml-bad-line.md", '+++\ntitle = "Bad"\ndraft = yes\n+++\nText.\n')
    write(tmp_path, "toml-unclosed.md", '+++\ntitle = "Unclosed"\ntags = ["a",\n+++\nText.\n')
    report = run(app, tmp_path)
    # tomllib counts from the line after +++ (or says "end of document"): the file's line counts.
    assert errors(report) == [
        ("toml-bad-line.md", 3, "TOML front matter: Invalid value"),
        ("toml-unclosed.md", 3, "TOML front matter: Invalid value"),
    ]
    with app.app_context():
        assert find("toml-dates").created_at == utc(2025, 4, 20, 9, 30)


def test_wrong_types_are_named_with_their_line(app, tmp_path):
    write(
        tmp_path,
        "wrong.md",
        """
        ---
        summary: Fine.
        title: [1, 2]
        tags: 5
        draft: "yes"
        date: "not a date"
        categories:
          - {name: Backend}
        ---
        Text.
        """,
    )
    report = run(app, tmp_path)
    assert errors(report) == [
        ("wrong.md", 3, "`title` must be text, not a list"),
        ("wrong.md", 4, "`tags` must be a list of names or a comma-separated string, not a number"),
        ("wrong.md", 5, "`draft` must be true or false, not text"),
        (
            "wrong.md",
            6,
            "`date` must be a date such as 2025-04-20 or 2025-04-20T09:30:00+02:00, not text",
        ),
        (
            "wrong.md",
            7,
            "`categories` must be a name or a list of names, not a list holding a mapping",
        ),
    ]
    assert report.summary() == "0 created, 0 updated, 0 skipped, 5 errors in 1 file"
    assert str(report.errors[0]) == f"{tmp_path / 'wrong.md'}:3: `title` must be text, not a list"


def test_missing_title_and_empty_body_are_errors(app, tmp_path):
    write(tmp_path, "no-title.md", "---\nsummary: No title here.\n---\nSome text.\n")
    write(tmp_path, "no-body.md", "---\ntitle: Nothing To Say\n---\n\n\n")
    write(tmp_path, "plain.md", "# Just Markdown\n\nNo front matter at all.\n")
    write(tmp_path, "good.md", "---\ntitle: Good\n---\nText.\n")
    report = run(app, tmp_path)
    assert errors(report) == [
        ("no-body.md", 4, "the article has no text after the front matter"),
        ("no-title.md", 1, "missing `title` in the front matter"),
        ("plain.md", 1, "missing `title` in the front matter"),
    ]
    assert [e.slug for e in report.created] == ["good"]  # the bad files stop nothing
    with app.app_context():
        assert db.session.scalar(select(Article).filter_by(slug="no-body")) is None


def test_a_tag_without_a_letter_or_digit_is_reported_not_dropped(app, tmp_path):
    write(tmp_path, "tags.md", "---\ntitle: Odd Tags\ntags: [Python, '***']\n---\nText.\n")
    message = "A tag needs a letter or a digit: “***”."
    assert errors(run(app, tmp_path)) == [("tags.md", 3, message)]


def test_too_many_tags_are_reported_on_the_tags_line(app, tmp_path):
    tags = ", ".join(f"tag{n}" for n in range(13))
    write(tmp_path, "tags.md", f"---\ntitle: Many Tags\ntags: {tags}\n---\nText.\n")
    assert errors(run(app, tmp_path)) == [("tags.md", 3, "At most 12 tags.")]


def test_front_matter_slug_wins_and_one_run_cannot_give_two_files_one_slug(app, tmp_path):
    write(tmp_path, "a.md", "---\ntitle: A\nslug: Shared Name\n---\nFirst.\n")
    write(tmp_path, "b.md", "---\ntitle: B\nslug: shared-name\n---\nSecond.\n")
    report = run(app, tmp_path)
    assert [e.slug for e in report.created] == ["shared-name"]
    [failure] = report.errors
    assert (failure.path.name, failure.line) == ("b.md", 3)
    assert "shared-name" in failure.message and "a.md" in failure.message
    # Still so when a.md is unchanged: b.md must not become a revision of a.md's article.
    again = run(app, tmp_path)
    assert [(e.path.name, e.reason) for e in again.skipped] == [("a.md", "unchanged")]
    assert [e.path.name for e in again.errors] == ["b.md"]


def test_jekyll_published_false_keeps_a_draft(app, tmp_path):
    write(tmp_path, "hidden.md", "---\ntitle: Hidden\npublished: false\n---\nText.\n")
    assert [(e.slug, e.status) for e in run(app, tmp_path).created] == [("hidden", Status.DRAFT)]


def test_an_explicit_author_owns_and_publishes(app, tmp_path):
    write(tmp_path, "mine.md", "---\ntitle: Mine\nauthor: dennis@example.com\n---\nText.\n")
    run(app, tmp_path / "mine.md", author="maya@example.com")
    with app.app_context():
        article = find("mine")
        assert article.author.email == "maya@example.com"
        assert article.reviewed_by.email == "maya@example.com"


def test_without_accounts_nothing_is_read_and_it_is_said_once(empty_app, trees, monkeypatch):
    import blog.importer

    def never(path, limit):  # noqa: ANN001, ANN202
        raise AssertionError(f"{path} was read")

    monkeypatch.setattr(blog.importer, "_read", never)
    with pytest.raises(ImportBlocked, match="no account to own the articles"):
        run(empty_app, trees / "hugo", trees / "jekyll")
    with empty_app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Article)) == 0


def test_the_command_says_a_missing_account_once(empty_app, trees):
    result = empty_app.test_cli_runner().invoke(args=["import", str(trees)])
    assert result.exit_code == 1
    assert result.output.count("no account to own the articles") == 1
    assert "created" not in result.output and "error " not in result.output


def test_without_an_admin_only_files_naming_their_author_import(empty_app, tmp_path):
    add_account(empty_app, "ana@example.com", "Ana", Role.AUTHOR)
    write(tmp_path, "anon.md", "---\ntitle: Anonymous\n---\nText.\n")
    write(tmp_path, "ana.md", "---\ntitle: Ana's\nauthor: Ana@Example.com\n---\nText.\n")
    report = run(empty_app, tmp_path)
    assert report.notes == [NO_ADMIN_NOTE]  # said once, before the files
    assert [e.slug for e in report.created] == ["ana"]
    assert errors(report) == [("anon.md", None, NO_ADMIN)]


def test_the_command_says_a_missing_admin_once_before_the_files(empty_app, tmp_path):
    add_account(empty_app, "ana@example.com", "Ana", Role.AUTHOR)
    for n in range(3):
        write(tmp_path, f"anon-{n}.md", f"---\ntitle: Anonymous {n}\n---\nText.\n")
    result = empty_app.test_cli_runner().invoke(args=["import", str(tmp_path)])
    assert result.output.count("no admin account") == 1
    assert result.output.index("no admin account") < result.output.index("anon-0.md")
    assert "0 created, 0 updated, 0 skipped, 3 errors" in result.output


def many_files(folder: Path, count: int) -> list[Path]:
    """Write `count` small valid articles, half of them AI drafts."""
    return [
        write(
            folder,
            f"post-{n:03d}.md",
            f"---\ntitle: Post {n}\ntags: [t{n % 5}, shared]\ncategory: C{n % 3}\n"
            f"ai_generated: {'true' if n % 2 else 'false'}\n---\n## Part\n\nText {n}.\n",
        )
        for n in range(count)
    ]


def article_rows() -> list[tuple]:
    """What readers and reviewers see of every article, in slug order."""
    rows = []
    for article in db.session.scalars(select(Article).order_by(Article.slug)):
        [revision] = revisions(article)
        rows.append(
            (
                article.slug,
                article.status,
                article.title,
                article.category.name,
                [t.name for t in article.tags],
                article.body_html,
                article.published_revision_id == (revision.id if article.is_public() else None),
                revision.kind,
                revision.digest,
                revision.sealed,
                [e.action for e in submits(article)],
            )
        )
    return rows


def test_batches_and_workers_write_what_one_file_at_a_time_writes(
    app, tmp_path, monkeypatch, template_databases
):
    import blog.importer

    many_files(tmp_path / "files", 9)
    (tmp_path / "other").mkdir()
    one_by_one = _make_app(tmp_path / "other", template_databases["demo"])
    monkeypatch.setattr(blog.importer, "_create_in_bulk", _fail)  # every file the slow way
    first = run(one_by_one, tmp_path / "files")
    assert first.summary() == "9 created, 0 updated, 0 skipped, 0 errors"
    with one_by_one.app_context():
        expected = article_rows()
    # No dispose() in the context above: the session still held a connection there, and a
    # disposed pool leaves it to the garbage collector (psycopg's ResourceWarning). The
    # fixtures close every app's connections after the test.
    monkeypatch.undo()

    monkeypatch.setattr(blog.importer, "BATCH_SIZE", 4)
    monkeypatch.setattr(blog.importer, "POOL_THRESHOLD", 2)  # prepared in worker processes
    report = run(app, tmp_path / "files")
    assert report.summary() == "9 created, 0 updated, 0 skipped, 0 errors"
    with app.app_context():
        assert article_rows() == expected
        assert find("post-000").is_public() and find("post-001").status == Status.IN_REVIEW


def _fail(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
    raise RuntimeError("a bulk write that fails")


def test_a_bad_file_in_a_batch_rolls_back_only_itself(app, tmp_path, monkeypatch):
    import blog.importer

    many_files(tmp_path, 6)
    real_create = blog.importer._create

    def create(fields, owner, name):  # noqa: ANN001, ANN202
        status = real_create(fields, owner, name)  # its rows are written, then it fails
        if name == "post-003.md":
            raise RuntimeError("a bug met half-way through one file")
        return status

    # The batch's bulk write fails, so the batch is written again file by file.
    monkeypatch.setattr(blog.importer, "_create_in_bulk", _fail)
    monkeypatch.setattr(blog.importer, "_create", create)
    monkeypatch.setattr(blog.importer, "BATCH_SIZE", 4)
    report = run(app, tmp_path)
    assert sorted(e.slug for e in report.created) == [f"post-{n:03d}" for n in (0, 1, 2, 4, 5)]
    [(name, line, message)] = errors(report)
    assert name == "post-003.md" and line is None and "RuntimeError" in message
    with app.app_context():
        assert db.session.scalar(select(Article).filter_by(slug="post-003")) is None
        assert (
            db.session.scalar(
                select(func.count()).select_from(Article).where(Article.slug.like("post-%"))
            )
            == 5
        )


def test_the_command_shows_counts_not_lines_on_a_terminal(app, tmp_path, monkeypatch):
    import blog.cli

    many_files(tmp_path, 3)
    write(tmp_path, "bad.md", "---\ntitle: [x]\n---\nText.\n")
    monkeypatch.setattr(blog.cli, "_on_terminal", lambda: True)
    result = app.test_cli_runner().invoke(args=["import", str(tmp_path)])
    assert "created  " not in result.output  # a person gets the bar and the counts instead
    assert f"{tmp_path / 'bad.md'}:2: `title` must be text" in result.output
    assert result.output.strip().splitlines()[-1] == "3 created, 0 updated, 0 skipped, 1 error"


def test_paths_that_are_missing_unreadable_or_not_markdown(app, tmp_path):
    (tmp_path / "latin1.md").write_bytes(b"---\ntitle: Caf\xe9\n---\nText.\n")
    (tmp_path / "notes.txt").write_text("not an article")
    report = run(app, tmp_path / "latin1.md", tmp_path / "notes.txt", tmp_path / "nowhere")
    assert errors(report) == [  # a missing path is said before any file is read
        ("nowhere", None, "no such file or folder"),
        ("latin1.md", 2, "the file is not UTF-8 text"),
    ]
    assert [(e.path.name, e.reason) for e in report.skipped] == [
        ("notes.txt", "not a Markdown file (.md or .markdown)")
    ]
    # A folder walk skips other files silently, and a file named twice is imported once.
    write(tmp_path, "once.md", "---\ntitle: Once\n---\nText.\n")
    twice = run(app, tmp_path / "once.md", tmp_path)
    assert [e.slug for e in twice.created] == ["once"]


def test_report_strings():
    report = ImportReport(errors=[ImportFailure(Path("a.md"), None, "bad")])
    assert report.summary() == "0 created, 0 updated, 0 skipped, 1 error"
    assert str(report.errors[0]) == "a.md: bad"
    assert str(ImportFailure(Path("posts/b.md"), 7, "worse")) == "posts/b.md:7: worse"


def test_a_human_article_whose_new_text_is_ai_generated_goes_to_review(app, client, tmp_path):
    post = write(tmp_path, "mixed.md", "---\ntitle: Mixed\n---\nMy own words.\n")
    run(app, post)
    post.write_text("---\ntitle: Mixed\nai_generated: true\nai_model: m1\n---\nA model's words.\n")
    report = run(app, post)
    assert [(e.slug, e.status) for e in report.updated] == [("mixed", Status.IN_REVIEW)]
    with app.app_context():
        article = find("mixed")
        newest = latest_revision(article)
        assert newest.ai_generated and newest.ai_model == "m1"
        # Readers still see the human text, so it is still labelled as human-written.
        assert not article.ai_generated
    public = parse(client.get("/articles/mixed"))
    assert "My own words." in public.get_text()
    assert (
        public.select_one(".post-header .provenance").get_text(strip=True).startswith("Written by")
    )


GOOD_FILE = "---\ntitle: Still here\n---\nThe other files import.\n"


@pytest.mark.parametrize(
    ("front", "line", "words"),
    [
        ("tags: &a [*a]", 3, "refers to itself"),
        ("date: 0001-01-01T00:00:00+01:00", 3, "cannot be converted to UTC"),
        ("date: 9999-12-31T23:30:00-01:00", 3, "cannot be converted to UTC"),
        ("date: '0001-01-01T00:00:00+01:00'", 3, "cannot be converted to UTC"),
        ("date: 2025-02-30", 3, "2025-02-30"),
        ("tags: [[a, [b]]]", 3, "`tags` must be"),
        ("tags: [" + ", ".join(f"t{n}" for n in range(30_000)) + "]", 1, "longer than 100,000"),
    ],
    ids=[
        "recursive-alias",
        "year-1",
        "year-9999",
        "year-1-text",
        "no-such-day",
        "nested-tags",
        "huge-front-matter",
    ],
)
def test_hostile_front_matter_is_that_files_error(app, tmp_path, front, line, words):
    write(tmp_path, "bad.md", f"---\ntitle: Bad\n{front}\n---\nText.\n")
    write(tmp_path, "good.md", GOOD_FILE)
    report = run(app, tmp_path)
    assert [e.slug for e in report.created] == ["good"]
    [(name, at, message)] = errors(report)
    assert name == "bad.md" and at == line and words in message, message


def test_a_toml_date_that_cannot_be_utc_is_that_files_error(app, tmp_path):
    write(tmp_path, "bad.md", "+++\ntitle = 'Bad'\ndate = 0001-01-01T00:00:00+01:00\n+++\nText.\n")
    report = run(app, tmp_path)
    [(name, at, message)] = errors(report)
    assert name == "bad.md" and at == 3 and "cannot be converted to UTC" in message


def test_an_unexpected_failure_is_that_files_error(app, tmp_path, monkeypatch):
    import blog.importer

    real = blog.importer._fields

    def explode(path, document, lines):  # noqa: ANN001, ANN202
        if path.name == "bad.md":
            raise ZeroDivisionError("a bug in the importer")
        return real(path, document, lines)

    monkeypatch.setattr(blog.importer, "_fields", explode)
    write(tmp_path, "bad.md", "---\ntitle: Bad\n---\nText.\n")
    write(tmp_path, "good.md", GOOD_FILE)
    report = run(app, tmp_path)
    assert [e.slug for e in report.created] == ["good"]
    [(name, at, message)] = errors(report)
    assert name == "bad.md" and at is None
    assert message.startswith("could not be imported: an unexpected error (ZeroDivisionError")


def test_links_out_of_the_tree_are_skipped_not_followed(app, tmp_path):
    outside = tmp_path / "outside"
    secret = write(outside, "secret.md", "---\ntitle: Secret\n---\nPrivate notes.\n")
    tree = tmp_path / "tree"
    write(tree, "good.md", GOOD_FILE)
    (tree / "leak.md").symlink_to(secret)
    (tree / "folder").symlink_to(outside, target_is_directory=True)
    inside = write(tree, "sub/inside.md", "---\ntitle: Inside\n---\nText.\n")
    (tree / "alias.md").symlink_to(inside)  # within the tree: imported once, as itself
    report = run(app, tree)
    assert sorted(e.slug for e in report.created) == ["good", "inside"]
    skipped = {e.path.name: e.reason for e in report.skipped}
    assert set(skipped) == {"leak.md", "folder", "alias.md"}
    assert "its own name" in skipped["alias.md"]
    assert "outside" in skipped["leak.md"] and "not followed" in skipped["leak.md"]
    assert "not followed" in skipped["folder"]
    assert not report.errors
    with app.app_context():
        assert db.session.scalar(select(Article).filter_by(title="Secret")) is None
    # Named on the command line, a link is what the user asked for.
    assert [e.slug for e in run(app, tree / "leak.md").created] == ["leak"]


def test_a_file_over_the_size_limit_is_reported_and_the_rest_import(app, tmp_path):
    app.config["IMPORT_MAX_FILE_BYTES"] = 1000
    write(tmp_path, "big.md", "---\ntitle: Big\n---\n" + "word " * 400)
    write(tmp_path, "good.md", GOOD_FILE)
    report = run(app, tmp_path)
    assert [e.slug for e in report.created] == ["good"]
    [(name, at, message)] = errors(report)
    assert name == "big.md" and at is None and "too large" in message and "1,000" in message


def test_the_default_size_limit_is_two_megabytes(app, tmp_path):
    from blog.importer import MAX_FILE_BYTES

    assert MAX_FILE_BYTES == 2 * 1024 * 1024
    write(tmp_path, "big.md", "---\ntitle: Big\n---\n" + "x" * MAX_FILE_BYTES)
    [(name, _, message)] = errors(run(app, tmp_path))
    assert name == "big.md" and "too large" in message


def test_a_file_that_is_not_regular_is_not_read(app, tmp_path):
    import os

    os.mkfifo(tmp_path / "pipe.md")  # reading it would wait forever
    write(tmp_path, "good.md", GOOD_FILE)
    report = run(app, tmp_path)
    assert [e.slug for e in report.created] == ["good"]
    [(name, _, message)] = errors(report)
    assert name == "pipe.md" and "not a regular file" in message


def test_the_command_reports_a_hostile_file_without_a_traceback(app, runner, tmp_path):
    write(tmp_path, "loop.md", "---\ntitle: Loop\ntags: &a [*a]\n---\nText.\n")
    write(tmp_path, "old.md", "---\ntitle: Old\ndate: 0001-01-01T00:00:00+01:00\n---\nText.\n")
    write(tmp_path, "good.md", GOOD_FILE)
    result = runner.invoke(args=["import", str(tmp_path)])
    assert (
        result.exit_code == 1
        and result.exception is None
        or isinstance(result.exception, SystemExit)
    )
    assert "Traceback" not in result.output
    assert f"{tmp_path / 'loop.md'}:3: " in result.output
    assert f"{tmp_path / 'old.md'}:3: " in result.output
    assert "1 created, 0 updated, 0 skipped, 2 errors" in result.output


# -- images and Jekyll's dates ------------------------------------------------------------------

MEDIA_TREES = Path(__file__).parent / "fixtures" / "media-import"


@pytest.fixture
def media_trees(tmp_path: Path) -> Path:
    """A Hugo site with a page bundle and a Jekyll site, each with pictures in the tree."""
    target = tmp_path / "media-import"
    shutil.copytree(MEDIA_TREES, target)
    return target


def test_a_hugo_bundle_brings_its_pictures(app, client, media_trees):
    report = run(app, media_trees / "hugo")
    assert [e.slug for e in report.created] == ["queues"] and report.errors == []
    post = media_trees / "hugo/content/posts/queues/index.md"
    assert report.warnings == [
        f"{post}: image 'missing.png' not found under {(media_trees / 'hugo').resolve()}; "
        "its link is kept as it was"
    ]
    with app.app_context():
        body = find("queues").body
        assert "diagram.png" not in body and "/images/logo.png" not in body
        assert "![A picture nobody committed](missing.png)" in body
        assert db.session.scalar(select(func.count()).select_from(Media)) == 2
        used = where_used(list(db.session.scalars(select(Media))))
        assert [[a.slug for a in articles] for articles in used.values()] == [["queues"]] * 2
    page = parse(client.get("/articles/queues"))
    figure = page.select_one("figure")
    picture = figure.img
    assert (picture["width"], picture["height"]) == ("640", "360")
    assert picture["alt"] == "How a queue fills" and "srcset" in picture.attrs
    assert figure.figcaption.get_text() == "Depth over a day"
    assert client.get(picture["src"]).status_code == 200
    logo = page.find("img", alt="Logo")
    assert logo["src"].endswith(".png") and logo["width"] == "96"
    # Pictures of other sites stay links; the missing one too.
    assert page.find("a", href="https://example.com/remote.png") is not None


def test_a_jekyll_site_brings_its_pictures_and_its_dates(app, client, media_trees):
    report = run(app, media_trees / "jekyll")
    assert sorted(e.slug for e in report.created) == ["date-in-words", "jekyll-4-3-2-released"]
    assert report.errors == []
    news = media_trees / "jekyll/_posts/2023-01-29-jekyll-4-3-2-released.md"
    words = media_trees / "jekyll/_posts/2024-05-01-date-in-words.md"
    assert sorted(report.warnings) == sorted(
        [
            f"{news}: image '../../../../../../etc/hostname' not found under "
            f"{(media_trees / 'jekyll').resolve()}; its link is kept as it was",
            f"{words}: line 3: `date` 'sometime in May' is not a date; used the file name's, "
            "2024-05-01",
        ]
    )
    with app.app_context():
        released = find("jekyll-4-3-2-released")
        # Jekyll's own `2023-01-29 18:30:22 2023 -0800`, as Ruby's Time.parse reads it.
        assert released.published_at == utc(2023, 1, 30, 2, 30, 22)
        assert "{{" not in released.body and "assets/img" not in released.body
        assert find("date-in-words").published_at == utc(2024, 5, 1)
        # One chart referenced by two posts (in two Liquid forms) is one image.
        chart = find("date-in-words").body.split("(")[1].split(")")[0]
        assert chart in released.body
    page = parse(client.get("/articles/jekyll-4-3-2-released"))
    photo = page.find("img", alt="A photo")
    served = client.get(photo["src"]).data
    assert b"SpyCam" not in served  # the EXIF (and its GPS) stayed behind


def test_reimporting_a_tree_with_pictures_changes_nothing(app, media_trees):
    run(app, media_trees / "hugo", media_trees / "jekyll")
    again = run(app, media_trees / "hugo", media_trees / "jekyll")
    assert again.summary() == "0 created, 0 updated, 3 skipped, 0 errors"


def test_a_date_that_is_not_one_without_a_dated_name_is_still_an_error(app, tmp_path):
    write(tmp_path, "undated.md", "---\ntitle: Undated\ndate: sometime in May\n---\nText.\n")
    report = run(app, tmp_path)
    assert [(line, message.split(",")[0]) for _name, line, message in errors(report)] == [
        (3, "`date` must be a date such as 2025-04-20 or 2025-04-20T09:30:00+02:00")
    ]


def test_pictures_prepared_in_worker_processes_are_stored_by_the_writer(
    app, client, media_trees, monkeypatch
):
    import blog.importer

    monkeypatch.setattr(blog.importer, "POOL_THRESHOLD", 1)  # prepared in worker processes
    app.config["IMPORT_WORKERS"] = 2
    report = run(app, media_trees / "hugo", media_trees / "jekyll")
    assert report.summary() == "3 created, 0 updated, 0 skipped, 0 errors"
    picture = parse(client.get("/articles/queues")).select_one("figure img")
    assert picture["width"] == "640" and client.get(picture["src"]).status_code == 200
    with app.app_context():  # the hashes the workers found are written with the revisions
        used = where_used(list(db.session.scalars(select(Media))))
        assert all(articles for articles in used.values()) and len(used) == 4


@postgres_only
def test_an_import_holds_few_picture_locks_at_once(app, client, tmp_path, monkeypatch):
    # Each stored picture holds a lock to the commit (blog.media.picture_rows); PostgreSQL's
    # lock table is a fixed size, so a batch of 200 posts full of pictures must commit as it goes.
    import blog.importer
    from blog.media import save

    from .test_media import image_bytes

    held = []

    def counting(processed, uploaded_by_id):  # noqa: ANN001, ANN202
        media = save(processed, uploaded_by_id)
        mine = (
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid()"
        )
        held.append(db.session.scalar(text(mine)))
        return media

    monkeypatch.setattr(blog.importer, "save", counting)
    monkeypatch.setattr(blog.importer, "PICTURES_PER_COMMIT", 3)
    links = []
    for number in range(8):
        (tmp_path / f"p{number}.png").write_bytes(image_bytes(size=(100 + number, 60)))
        links.append(f"![Picture {number}](p{number}.png)")
    write(tmp_path, "pictures.md", "---\ntitle: Pictures\n---\n" + "\n\n".join(links) + "\n")
    report = run(app, tmp_path)
    assert report.summary() == "1 created, 0 updated, 0 skipped, 0 errors"
    assert held == [1, 2, 3, 1, 2, 3, 1, 2]
    page = parse(client.get("/articles/pictures"))
    assert len(page.select("img")) == 8


@postgres_only
def test_two_imports_of_the_same_pictures_in_another_order_both_finish(app, tmp_path, monkeypatch):
    # Each picture's lock is held to the commit: one import storing p0 then p1 and another p1
    # then p0 deadlocked, and PostgreSQL aborted one of them with a traceback.
    import threading

    import blog.importer
    from blog.media import save

    from .test_media import image_bytes

    pictures = [image_bytes(size=(100 + n, 60)) for n in range(2)]
    folders = []
    for name, order in (("one", (0, 1)), ("two", (1, 0))):
        folder = tmp_path / name
        for n in order:
            folder.mkdir(exist_ok=True)
            (folder / f"p{n}.png").write_bytes(pictures[n])
        links = "\n\n".join(f"![P{n}](p{n}.png)" for n in order)
        write(folder, f"{name}.md", f"---\ntitle: Post {name}\n---\n{links}\n")
        folders.append(folder)
    both_hold_one = threading.Barrier(2)
    saved = threading.local()

    def save_then_wait(processed, uploaded_by_id):  # noqa: ANN001, ANN202
        media = save(processed, uploaded_by_id)
        saved.count = getattr(saved, "count", 0) + 1
        if saved.count == 1:  # each holds its first picture's lock, and waits for the other
            try:
                both_hold_one.wait(timeout=3)
            except threading.BrokenBarrierError:  # the other is waiting for this one's lock
                pass
        return media

    monkeypatch.setattr(blog.importer, "save", save_then_wait)
    summaries, failures = [], []

    def importing(folder: Path) -> None:
        try:
            summaries.append(run(app, folder).summary())
        except Exception as error:  # noqa: BLE001 - the test reports it
            failures.append(error)

    threads = [threading.Thread(target=importing, args=(folder,)) for folder in folders]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert failures == []
    assert summaries == ["1 created, 0 updated, 0 skipped, 0 errors"] * 2


def test_a_batch_ends_once_its_pictures_hold_enough_bytes():
    # A batch of 200 photo posts held gigabytes of pictures written again.
    from types import SimpleNamespace

    from blog.importer import _batches

    items = [SimpleNamespace(picture_bytes=n) for n in (0, 40, 30, 0, 0, 80, 10)]
    sizes = [[item.picture_bytes for item in batch] for batch in _batches(iter(items), 4, 64)]
    assert sizes == [[0, 40, 30], [0, 0, 80], [10]]


@pytest.mark.parametrize(
    ("total", "sizes"),
    [(1000, [200, 200, 200, 200, 150, 50]), (230, [180, 50]), (450, [200, 200, 50]), (50, [50])],
)
def test_the_last_files_make_a_short_batch_of_their_own(total, sizes):
    # The last batch is written once the workers are done, with a core idle: 200 files there
    # took ~0.17 s of a 1.3 s import, 50 take ~0.05 s.
    from types import SimpleNamespace

    from blog.importer import _batches

    items = (SimpleNamespace(picture_bytes=0) for _ in range(total))
    batches = _batches(items, 200, last=50, total=total)
    assert [len(batch) for batch in batches] == sizes


def test_workers_run_ahead_of_the_writer_only_as_far_as_their_pictures_allow(monkeypatch):
    # 400 photo posts were prepared ahead of the writer, 16 to a task: gigabytes in flight.
    from types import SimpleNamespace

    import blog.importer
    from blog.importer import _Lookahead

    monkeypatch.setattr(blog.importer, "PREPARED_PICTURE_BYTES", 100)
    files = SimpleNamespace
    text = _Lookahead(workers=2)
    # Before any file is seen: a small task per worker, no more.
    assert text.chunk_size == 2 and text.room(1, 2) and not text.room(2, 4)
    text.saw([files(picture_bytes=0)] * 2)  # text only: whole chunks, far ahead
    assert text.chunk_size == blog.importer.PREPARE_CHUNK
    assert text.room(text.chunks_most - 1, 300) and not text.room(text.chunks_most, 316)
    photos = _Lookahead(workers=2)
    photos.saw([files(picture_bytes=0), files(picture_bytes=30)])
    assert photos.chunk_size == 1
    assert photos.room(2, 2) and not photos.room(3, 3)  # 4 files of 30 bytes would be 120
    assert photos.room(1, 50)  # a task per worker, whatever they hold


def _prepare_logging(path, limit):  # noqa: ANN001, ANN202 - a stand-in for _prepare
    """Note each file a worker prepares; a file named photo-* holds 30 bytes of pictures."""
    from types import SimpleNamespace

    from blog.importer import _Prepared

    with open(os.environ["PREPARED_LOG"], "a") as log:
        log.write(path.name + "\n")
    picture = SimpleNamespace(data=bytes(30), variants={})
    images = [("p.png", picture)] if path.name.startswith("photo-") else []
    return _Prepared(path, fields=SimpleNamespace(images=images))


def test_photo_posts_after_text_posts_are_not_all_prepared_ahead(app, tmp_path, monkeypatch):
    # Text posts let workers run 400 files ahead; photo posts that followed were all prepared in
    # that window before any picture was seen, and held by the writer: 7.7 GB of 20 MB posts.
    import time

    import blog.importer
    from blog.importer import PREPARE_CHUNK, _prepare_all

    monkeypatch.setattr(blog.importer, "_prepare", _prepare_logging)
    monkeypatch.setattr(blog.importer, "PREPARED_PICTURE_BYTES", 100)
    monkeypatch.setenv("PREPARED_LOG", str(tmp_path / "prepared.log"))
    app.config["IMPORT_WORKERS"] = 2
    files = [tmp_path / f"text-{n:03}.md" for n in range(400)]
    files += [tmp_path / f"photo-{n:03}.md" for n in range(200)]
    seen = []
    with app.app_context():
        for item in _prepare_all(files):
            if item.path.name == "photo-000.md":
                log = (tmp_path / "prepared.log").read_text().split()
                prepared_ahead = sum(name.startswith("photo-") for name in log)
            seen.append(item.path)
            if item.path.name == "text-399.md":
                time.sleep(1)  # a slow batch write: the workers run as far ahead as they may
    assert seen == files
    # The task that showed the first picture, a file more for each task under way or queued
    # (2 workers, and 3 queued), and the one-file tasks 100 bytes allow: 200 before.
    assert prepared_ahead <= PREPARE_CHUNK + 2 + 3 + 3


def test_a_prepared_file_counts_the_bytes_of_its_pictures(app, media_trees):
    from blog.importer import MAX_FILE_BYTES, _prepare

    post = media_trees / "hugo/content/posts/queues/index.md"
    with app.app_context():
        prepared = _prepare(post, MAX_FILE_BYTES)
    pictures = [picture for _src, picture in prepared.fields.images]
    assert len(pictures) == 2
    assert prepared.picture_bytes == sum(
        len(p.data) + sum(len(v) for v in p.variants.values()) for p in pictures
    )


def test_a_batch_written_again_file_by_file_keeps_every_problem_of_a_file(
    app, tmp_path, monkeypatch
):
    import blog.importer

    monkeypatch.setattr(blog.importer, "_create_in_bulk", _fail)
    write(tmp_path, "wrong.md", "---\ntitle: [1]\ntags: 5\n---\nText.\n")
    write(tmp_path, "good.md", GOOD_FILE)
    report = run(app, tmp_path)
    assert [e.slug for e in report.created] == ["good"]
    assert [(name, line) for name, line, _ in errors(report)] == [("wrong.md", 2), ("wrong.md", 3)]


def test_a_tag_spelled_two_ways_in_one_batch_is_named_as_its_first_file_says(app, tmp_path):
    # One file at a time, the first file creates the tag and the second finds it by its slug.
    write(tmp_path, "a.md", "---\ntitle: A\ntags: [JavaScript]\n---\nText.\n")
    write(tmp_path, "b.md", "---\ntitle: B\ntags: [javascript]\n---\nText.\n")
    assert run(app, tmp_path).summary() == "2 created, 0 updated, 0 skipped, 0 errors"
    with app.app_context():
        assert (
            [t.name for t in find("a").tags] == [t.name for t in find("b").tags] == ["JavaScript"]
        )


def test_a_batch_of_new_files_is_a_few_statements_not_some_per_file(app, tmp_path):
    from collections import Counter

    from sqlalchemy import event

    many_files(tmp_path, 40)  # fewer than POOL_THRESHOLD: prepared in this process
    inserts: Counter[str] = Counter()

    def count(_conn, _cursor, statement, _params, _context, _many):  # noqa: ANN001, ANN202
        if statement.startswith("INSERT INTO"):
            inserts[statement.split()[2]] += 1

    with app.app_context():
        engine = db.engine
    event.listen(engine, "before_cursor_execute", count)
    try:
        report = run(app, tmp_path)
    finally:
        event.remove(engine, "before_cursor_execute", count)
    assert report.summary() == "40 created, 0 updated, 0 skipped, 0 errors"
    # Asking for the new ids in the order given made SQLAlchemy send SQLite one INSERT a row.
    assert inserts["articles"] == inserts["revisions"] == 1, inserts


@pytest.mark.parametrize(
    "front",
    [
        "title: 'Quoted: yes'\ndate: 2025-04-20T09:30:00+02:00\ndraft: false\nweight: 3",
        "title: Plain\ndate: 2025-04-20 09:30:00\ntags: [a, 'b, c', 1984, true]\nratio: 1.5",
        'title: "Dated"\ndate: 2025-04-20\ncategories:\n  - One\n  - Two\nempty:\nnull: ~',
        "title: x\nbase: &b [a, b]\ntags: *b\nmore: {k: *b, n: [*b]}\nyes: yes\noct: 0o17",
        'title: >\n  Folded\n  text\nsummary: |\n  Kept\n  lines\nu: "caf\\u00e9 \\U0001F600"',
        "Title: Upper\nTAGS: [X]\n? complex\n: key\nstamp: 2001-12-14t21:59:43.10-05:00",
    ],
    ids=["hugo", "jekyll", "lists", "aliases", "block-scalars", "odd-keys"],
)
def test_libyaml_and_pyyaml_read_front_matter_alike(front):
    import yaml

    from blog import frontmatter

    if frontmatter.FAST_LOADER is None:
        pytest.skip("PyYAML was installed without libyaml")
    fast = frontmatter._load(front, frontmatter.FAST_LOADER)
    assert fast == frontmatter._load(front, yaml.SafeLoader) and fast["title"]


def test_libyaml_reads_front_matter_and_a_problem_is_said_as_pyyaml_says_it(monkeypatch):
    from datetime import date

    import yaml

    from blog import frontmatter

    if frontmatter.FAST_LOADER is None:
        pytest.skip("PyYAML was installed without libyaml")
    used = []
    real = frontmatter._load

    def spy(source, loader_class):  # noqa: ANN001, ANN202
        used.append(loader_class)
        return real(source, loader_class)

    monkeypatch.setattr(frontmatter, "_load", spy)
    document = frontmatter.parse("---\ntitle: Fast\ndate: 2025-04-20\n---\nBody\n")
    assert document.meta == {"title": "Fast", "date": date(2025, 4, 20)}
    assert used == [frontmatter.FAST_LOADER]
    used.clear()
    # libyaml words this "control characters are not allowed" and counts bytes, not lines.
    with pytest.raises(frontmatter.FrontMatterError) as caught:
        frontmatter.parse("---\ntitle: x\nsummary: a\x01b\n---\nBody\n")
    assert used == [frontmatter.FAST_LOADER, yaml.SafeLoader]
    assert caught.value.line == 3 and "special characters are not allowed" in caught.value.message


def _automerge() -> int:
    """FTS5's merge setting as stored in the index (its default, 4, when never set)."""
    from sqlalchemy import text

    value = db.session.scalar(text("SELECT v FROM articles_fts_config WHERE k = 'automerge'"))
    return 4 if value is None else int(value)


def found_posts(client) -> set[str]:  # noqa: ANN001
    """The titles of many_files' articles that a search for them shows."""
    titles = [
        " ".join(a.get_text().split())
        for a in parse(client.get("/?q=post")).select(".card-title a")
    ]
    return {title for title in titles if title.startswith("Post ")}


@pytest.fixture
def each_batch(tmp_path, monkeypatch):
    """12 files imported as a large import in batches of 4; call it with what to do per batch.

    The function given gets the batch and the real writer, and decides whether to write.
    """
    import blog.importer

    monkeypatch.setattr(blog.importer, "BULK_THRESHOLD", 10)
    monkeypatch.setattr(blog.importer, "BATCH_SIZE", 4)
    many_files(tmp_path, 12)
    write_batch = blog.importer._Run.import_batch

    def around(step):  # noqa: ANN001, ANN202
        monkeypatch.setattr(
            blog.importer._Run, "import_batch", lambda run, batch: step(batch, run, write_batch)
        )

    return around


@sqlite_only
def test_a_large_import_writes_the_index_in_bulk_and_puts_it_back(
    app, client, tmp_path, each_batch
):
    seen: list[int] = []

    def watched(batch, run, write):  # noqa: ANN001, ANN202
        seen.append(_automerge())
        write(run, batch)

    each_batch(watched)
    assert run(app, tmp_path).summary() == "12 created, 0 updated, 0 skipped, 0 errors"
    assert seen == [16, 16, 16]
    with app.app_context():
        assert _automerge() == 4
    # The published half is found by search, as articles published one by one are.
    assert found_posts(client) == {f"Post {n}" for n in range(0, 12, 2)}


@sqlite_only
def test_an_import_stopped_halfway_puts_the_index_back_and_keeps_what_it_wrote(
    app, client, tmp_path, each_batch
):
    written: list[int] = []

    def interrupted(batch, run, write):  # noqa: ANN001, ANN202
        if written:
            raise KeyboardInterrupt  # Ctrl-C while the second batch is being written
        write(run, batch)
        written.append(len(batch))

    each_batch(interrupted)
    with app.app_context():
        before = db.session.scalar(select(func.count()).select_from(Article))
    with pytest.raises(KeyboardInterrupt):
        run(app, tmp_path)
    with app.app_context():
        assert _automerge() == 4
        assert db.session.scalar(select(func.count()).select_from(Article)) == before + 4
    assert found_posts(client) == {"Post 0", "Post 2"}


def test_ctrl_c_during_a_batch_lets_that_batch_finish_then_stops(app, tmp_path, each_batch):
    """A Ctrl-C that broke into a batch's statements left its connection holding SQLite's write
    lock: the cleanup then waited 10 s for the lock and failed with a traceback, leaving the
    search index's bulk setting behind. The batch being written now finishes first."""
    import os
    import signal

    written: list[int] = []

    def pressed_while_writing(batch, run, write):  # noqa: ANN001, ANN202
        if written:
            os.kill(os.getpid(), signal.SIGINT)  # Ctrl-C as the second batch starts
        write(run, batch)
        written.append(len(batch))

    each_batch(pressed_while_writing)
    with app.app_context():
        before = db.session.scalar(select(func.count()).select_from(Article))
    with pytest.raises(KeyboardInterrupt):
        run(app, tmp_path)
    assert written == [4, 4]  # the second batch was written whole, the third never started
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Article)) == before + 8
        if db.engine.dialect.name == "sqlite":
            assert _automerge() == 4


def test_a_press_while_the_ctrl_c_note_is_written_does_not_write_it_again():
    """The handler runs again for a press that comes while it writes the note (seen in CI)."""
    import os
    import signal

    from blog.importer import CTRL_C_NOTE, _ctrl_c_held

    said: list[str] = []

    def notes(message: str) -> None:
        said.append(message)
        if len(said) == 1:
            os.kill(os.getpid(), signal.SIGINT)  # the second press, as the note is written
            sum(range(1000))  # a few bytecodes, where Python runs the handler

    with pytest.raises(KeyboardInterrupt), _ctrl_c_held(notes):
        os.kill(os.getpid(), signal.SIGINT)
        sum(range(1000))
    assert said == [CTRL_C_NOTE]


@sqlite_only
def test_a_second_ctrl_c_while_the_index_is_put_back_waits_for_it(
    app, tmp_path, each_batch, monkeypatch
):
    """Cut short, putting the index back left it merging 16 segments at a time for good."""
    import os
    import signal

    from blog.search import search_index

    def interrupted(batch, run, write):  # noqa: ANN001, ANN202
        raise KeyboardInterrupt  # the first Ctrl-C, as the first batch is written

    each_batch(interrupted)
    with app.app_context():
        index_class = type(search_index())
    bulk_loading = index_class.bulk_loading

    def pressed_again(index, on):  # noqa: ANN001, ANN202
        if not on:
            os.kill(os.getpid(), signal.SIGINT)  # the second, as the setting is put back
        bulk_loading(index, on)

    monkeypatch.setattr(index_class, "bulk_loading", pressed_again)
    with pytest.raises(KeyboardInterrupt):
        run(app, tmp_path)
    with app.app_context():
        assert _automerge() == 4


def test_a_press_after_the_import_has_stopped_changes_nothing(app, tmp_path, monkeypatch):
    """The second of two quick Ctrl-Cs, arriving once the import had stopped and said so.

    It broke into whatever Python ran next: once, a weak reference's callback as the command
    ended, which printed "Exception ignored in ..." and a traceback (a CI run).
    """
    import os
    import signal
    import time

    import click

    import blog.importer

    def stopped(*_args, **_kwargs):  # noqa: ANN002, ANN003, ANN202
        raise KeyboardInterrupt  # the first press, as a batch is written

    monkeypatch.setattr(blog.importer, "import_paths", stopped)
    echo = click.echo
    broke_in = []

    def said(message=None, **kwargs):  # noqa: ANN001, ANN003, ANN202
        echo(message, **kwargs)
        if str(message).startswith("Stopped after"):
            try:
                os.kill(os.getpid(), signal.SIGINT)  # the second press
                time.sleep(0.05)  # Python runs a signal's handler between two steps
            except KeyboardInterrupt:
                broke_in.append(True)

    monkeypatch.setattr(click, "echo", said)
    write(tmp_path / "posts", "one.md", "---\ntitle: One\n---\nBody\n")
    try:
        result = app.test_cli_runner().invoke(args=["import", str(tmp_path / "posts")])
    finally:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    assert result.exit_code == 1
    assert "Stopped after" in result.output
    assert not broke_in


def _import_command(
    app: Flask,
    tmp_path: Path,
    folder: Path,
    start: str | None = None,
    environment: dict[str, str] | None = None,
) -> Popen:
    """Start the real `flask import` of `folder` on the app's database, as a shell's job.

    It runs in its own process group, as a terminal's job does, so that a test's os.killpg
    sends Ctrl-C to the command and its workers alike. `start` is multiprocessing's start
    method, when the test needs one other than the platform's (spawn is macOS's default);
    `environment` is added to the command's.
    """
    import os
    import sys

    instance = tmp_path / "cli-instance"
    instance.mkdir()
    database = app.config["SQLALCHEMY_DATABASE_URI"]
    (instance / "config.py").write_text(
        f"SQLALCHEMY_DATABASE_URI = {database!r}\nSECRET_KEY = 'test-secret'\nIMPORT_WORKERS = 2\n"
    )
    env = {name: value for name, value in os.environ.items() if name != "DATABASE_URL"}
    env["BLOG_INSTANCE_PATH"] = str(instance)
    env.update(environment or {})
    command = [sys.executable, "-m", "flask", "--app", "app", "import", str(folder)]
    if start is not None:  # flask's own entry point, after the start method is set
        command[1:3] = [
            "-c",
            "import multiprocessing, sys; from flask.cli import main;"
            f" multiprocessing.set_start_method({start!r}); sys.argv[0] = 'flask'; main()",
        ]
    return Popen(
        command,
        cwd=Path(__file__).resolve().parents[1],
        env=env,
        stdout=PIPE,
        stderr=PIPE,
        start_new_session=True,
    )


def _stop_group(importing: Popen) -> None:
    """Kill what is left of a command the test gave up on, workers included."""
    import os
    import signal

    if importing.poll() is None:
        os.killpg(importing.pid, signal.SIGKILL)
        importing.communicate()


def test_ctrl_c_pressed_twice_stops_an_import_cleanly_and_keeps_what_it_wrote(app, tmp_path):
    """Two quick Ctrl-Cs, as a terminal sends them to the command and its worker processes.

    Worker processes printed tracebacks, and a second press that broke into the cleanup the
    first one started could hang the exit for ever, waiting on them (CPython 3.11's pool).
    """
    import os
    import signal
    import time

    from blog.importer import BATCH_SIZE

    folder = tmp_path / "posts"
    # A chunk takes a while, and the import seconds: a CI run once stalled this test's polling
    # until all five batches were in, and the presses came after the import.
    words = " ".join(f"word{n} `code` *stress*" for n in range(1500))
    for n in range(1000):  # BULK_THRESHOLD: the search index is set for bulk writes
        write(folder, f"post-{n:04d}.md", f"---\ntitle: Post {n}\ntags: [t]\n---\n{words}\n")
    with app.app_context():
        before = db.session.scalar(select(func.count()).select_from(Article))
        db.session.remove()
    importing = _import_command(app, tmp_path, folder)
    try:
        started = time.monotonic()
        with app.app_context():  # wait for the first batch, so the workers are busy
            while db.session.scalar(select(func.count()).select_from(Article)) == before:
                db.session.remove()
                assert importing.poll() is None and time.monotonic() - started < 120
                time.sleep(0.02)
            db.session.remove()
        os.killpg(importing.pid, signal.SIGINT)
        time.sleep(0.01)
        os.killpg(importing.pid, signal.SIGINT)
        _out, err = importing.communicate(timeout=60)
    finally:
        _stop_group(importing)
    said = err.decode()
    assert "Traceback" not in said, said
    # Aborted (1), or ended by the second press once the cleanup was done, as Python ends.
    assert importing.returncode in (1, -signal.SIGINT), said
    # No worker process outlived the command (multiprocessing's helpers, under spawn or
    # forkserver, take a moment to be reaped).
    deadline = time.monotonic() + 10
    with pytest.raises(ProcessLookupError):
        while time.monotonic() < deadline:
            os.killpg(importing.pid, 0)
            time.sleep(0.1)
    with app.app_context():
        written = db.session.scalar(select(func.count()).select_from(Article)) - before
        assert written > 0 and written % BATCH_SIZE == 0  # whole batches, nothing half-written
        assert written < 1000, "the presses came after the import: this test was held up"
        assert f"Stopped after {written} of 1000 files; the batches written are kept." in said
        assert said.count("Ctrl-C: stopping once the batch being written is saved") <= 1
        if db.engine.dialect.name == "sqlite":
            assert _automerge() == 4


# Run as sitecustomize in the import's processes: it stalls the step a test presses Ctrl-C in
# until the test says it pressed, after a file (named by the process id) says the press may
# come. The command leads its own session (_import_command): a process of it whose id is not
# the session's is a worker.
_STALL = """
import os, sys, time
from importlib.abc import MetaPathFinder

def stall():
    open(os.path.join(os.environ["STALLED"], str(os.getpid())), "w").close()
    pressed, deadline = os.path.join(os.environ["STALLED"], "pressed"), time.monotonic() + 60
    while not os.path.exists(pressed) and time.monotonic() < deadline:
        time.sleep(0.01)

where = os.environ["STALL_PARENT" if os.getpid() == os.getsid(0) else "STALL_WORKER"]
if where == "pool thread":  # as the pool starts the thread that hands out its work
    from concurrent.futures import process

    start = process._ExecutorManagerThread.start
    def stalled(self):
        stall()
        start(self)
    process._ExecutorManagerThread.start = stalled
elif where:  # as this module is imported
    class Stall(MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name == where:
                stall()

    sys.meta_path.insert(0, Stall())
"""


@pytest.mark.parametrize(
    ("start", "parent", "worker"),
    [
        ("fork", "pool thread", ""),
        ("spawn", "pool thread", ""),
        ("forkserver", "pool thread", ""),
        ("spawn", "", "blog.importer"),
        ("forkserver", "", "blog.importer"),
    ],
)
def test_ctrl_c_while_the_workers_start_stops_the_import_cleanly(
    app, tmp_path, start, parent, worker
):
    """A press while the pool starts, or while a worker starts and cannot ignore it yet.

    A press that broke into the pool's start left the pool half started: its shutdown failed
    ("cannot join thread before it is started"). A worker that spawn or forkserver starts
    (macOS's default, and Python 3.14's on Linux) imports the app before its initializer runs:
    a press then gave a KeyboardInterrupt traceback (spawn), or ended it unseen (forkserver).
    """
    import os
    import time

    folder = tmp_path / "posts"
    for n in range(100):
        write(folder, f"post-{n:04d}.md", f"---\ntitle: Post {n}\n---\nSome text.\n")
    hooks, stalled = tmp_path / "hooks", tmp_path / "stalled"
    hooks.mkdir()
    stalled.mkdir()
    (hooks / "sitecustomize.py").write_text(_STALL)
    environment = {
        "PYTHONPATH": str(hooks),
        "STALLED": str(stalled),
        "STALL_PARENT": parent,
        "STALL_WORKER": worker,
    }
    importing = _import_command(app, tmp_path, folder, start=start, environment=environment)
    try:
        started = time.monotonic()
        while not any(stalled.iterdir()):
            assert importing.poll() is None and time.monotonic() - started < 60
            time.sleep(0.01)
        os.killpg(importing.pid, signal.SIGINT)
        (stalled / "pressed").touch()
        _out, err = importing.communicate(timeout=60)
    finally:
        _stop_group(importing)
    said = err.decode()
    assert "Traceback" not in said, said
    assert importing.returncode == 1, said
    assert "Stopped after 0 of 100 files" in said, said


def test_media_storage_that_fails_stops_the_import_with_one_message(
    tmp_path, template_databases, media_trees, monkeypatch
):
    # A file where the media folder should be: every picture fails to store, so every post
    # with one would; the import stops there, says why once, and keeps the batches written.
    import blog.importer

    monkeypatch.setattr(blog.importer, "BATCH_SIZE", 1)
    blocked = tmp_path / "not-a-folder"
    blocked.write_text("")
    app = _make_app(tmp_path, template_databases["demo"], MEDIA_ROOT=str(blocked / "media"))
    plain = write(tmp_path / "plain", "plain.md", GOOD_FILE)
    result = app.test_cli_runner().invoke(args=["import", str(plain), str(media_trees / "hugo")])
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit)  # not a crash
    stop = [line for line in result.output.splitlines() if "media storage" in line]
    assert len(stop) == 1, result.output
    assert "Not a directory" in stop[0] and "run the import again" in stop[0]
    assert "1 created, 0 updated, 0 skipped" in result.output  # plain.md, in an earlier batch
    with app.app_context():
        assert db.session.scalar(select(Article).filter_by(slug="queues")) is None


def test_on_a_terminal_a_problem_many_files_share_is_one_line(empty_app, tmp_path, monkeypatch):
    import blog.cli

    add_account(empty_app, "ana@example.com", "Ana", Role.AUTHOR)
    for n in range(12):
        write(tmp_path, f"anon-{n:02d}.md", f"---\ntitle: Anonymous {n}\n---\nText.\n")
    write(tmp_path, "bad.md", "---\ntitle: [x]\nauthor: ana@example.com\n---\nText.\n")
    monkeypatch.setattr(blog.cli, "_on_terminal", lambda: True)
    result = empty_app.test_cli_runner().invoke(args=["import", str(tmp_path)])
    lines = result.output.splitlines()
    owner = [line for line in lines if "no owner" in line]
    first = ", ".join(str(tmp_path / f"anon-{n:02d}.md") for n in range(3))
    assert owner == [f"error    {first} and 9 more files: {NO_ADMIN}"]
    assert f"error    {tmp_path / 'bad.md'}:2: `title` must be text, not a list" in lines
    assert lines[-1] == "0 created, 0 updated, 0 skipped, 13 errors"
    # Again, unchanged: one line for the twelve, not one each (a pipe still gets one each).
    add_account(empty_app, "admin@example.com", "Ad", Role.ADMIN)
    empty_app.test_cli_runner().invoke(args=["import", str(tmp_path)])
    again = empty_app.test_cli_runner().invoke(args=["import", str(tmp_path)]).output
    skipped = [line for line in again.splitlines() if line.startswith("skipped")]
    assert len(skipped) == 1 and skipped[0].endswith(" and 9 more files: unchanged")
    monkeypatch.setattr(blog.cli, "_on_terminal", lambda: False)
    logged = empty_app.test_cli_runner().invoke(args=["import", str(tmp_path)]).output
    assert sum(line.startswith("skipped") for line in logged.splitlines()) == 12


def test_progress_counts_what_the_bar_shows(app, tmp_path, monkeypatch):
    import blog.importer

    monkeypatch.setattr(blog.importer, "BATCH_SIZE", 4)
    many_files(tmp_path, 10)
    seen: list[tuple[int, int, int]] = []

    def progress(done: int, total: int, report: ImportReport) -> None:
        seen.append((done, total, len(report.created) + len(report.errors)))

    with app.app_context():
        import_paths([tmp_path], progress=progress)
    assert seen == [(0, 10, 0), (4, 10, 4), (8, 10, 8), (10, 10, 10)]


def test_an_import_eases_the_garbage_collector_while_it_runs_and_only_then(app, tmp_path):
    # The objects alive before it are frozen (full collections need not walk the app) and
    # collections come seldom; the process gets its collector back as it was.
    from blog.importer import IMPORT_GC_THRESHOLD

    many_files(tmp_path, 3)
    seen: list[tuple[int, int]] = []
    thresholds = gc.get_threshold()
    with app.app_context():
        import_paths(
            [tmp_path],
            progress=lambda *_: seen.append((gc.get_freeze_count(), gc.get_threshold()[0])),
        )
        assert len(seen) == 2  # before any file, then after the batch
        assert seen[1][0] > 1000 and seen[1][1] == IMPORT_GC_THRESHOLD
        assert gc.get_freeze_count() == 0 and gc.get_threshold() == thresholds
        gc.freeze()  # a server that froze its objects before forking keeps them frozen
        try:
            kept = gc.get_freeze_count()
            import_paths([tmp_path])
            assert gc.get_freeze_count() > kept // 2  # some died meanwhile; none thawed
        finally:
            gc.unfreeze()


@pytest.mark.parametrize("path", ["in bulk", "one by one"])
def test_an_imported_article_wears_its_own_spelling_of_a_drafts_tag(
    app, client, make_article, tmp_path, monkeypatch, path
):
    # A never-approved draft created the rows "kafka" and "streaming" first, under names no
    # one reviewed; the published file that shares those slugs must show its own names.
    import blog.importer

    if path == "one by one":
        monkeypatch.setattr(blog.importer, "_create_in_bulk", _fail)
    make_article(
        "Never approved",
        category="Streaming ⚠ 网站已被入侵",
        tags=["Kafka — ЭТОТ САЙТ ВЗЛОМАН"],
        status=Status.DRAFT,
    )
    write(
        tmp_path,
        "kafka.md",
        """
        ---
        title: Kafka streams
        slug: kafka-streams
        categories: [Streaming]
        tags: [Kafka]
        ---
        Text about consumers.
        """,
    )
    assert run(app, tmp_path).summary() == "1 created, 0 updated, 0 skipped, 0 errors"
    page = client.get("/articles/kafka-streams").get_data(as_text=True)
    assert "Kafka" in page and "ЭТОТ" not in page and "网站" not in page


def test_a_file_that_grows_after_it_was_measured_is_read_whole_or_refused(tmp_path):
    """The read is sized by stat(): a file written to since is read on, up to the limit."""
    from blog.importer import _FileProblems, _read

    post = tmp_path / "post.md"
    post.write_text("short")
    measured = post.stat()
    post.write_text("short, then a great deal longer")

    class Measured(type(post)):  # stat() as it was before the file grew
        def stat(self, **_kwargs):  # noqa: ANN003, ANN202
            return measured

    assert _read(Measured(post), 1000) == "short, then a great deal longer"
    with pytest.raises(_FileProblems) as refused:
        _read(Measured(post), 10)
    [(_, message)] = refused.value.problems
    assert "too large" in message and "11 bytes" in message


def _report_niceness(path, _limit):  # noqa: ANN001, ANN202 - stands in for _prepare in a worker
    import os

    from blog.importer import _Prepared

    return _Prepared(path, problems=[(None, f"niceness {os.nice(0)}")])


def test_worker_processes_run_at_a_lower_priority_than_the_writer(app, tmp_path, monkeypatch):
    """The writer is the critical path: workers ahead of it must not take its core."""
    import os

    import blog.importer

    many_files(tmp_path, 4)
    monkeypatch.setattr(blog.importer, "POOL_THRESHOLD", 1)  # prepared in worker processes
    monkeypatch.setattr(blog.importer, "_prepare", _report_niceness)
    app.config["IMPORT_WORKERS"] = 2
    expected = min(19, os.nice(0) + blog.importer.WORKER_NICENESS)  # 19 is the lowest priority
    messages = {message for _, _, message in errors(run(app, tmp_path))}
    assert messages == {f"niceness {expected}"} and os.nice(0) < expected


def _logged_prepare(path, limit):  # noqa: ANN001, ANN202 - stands in for _prepare in a worker
    """Prepare a file as the importer does (the function imported above), noting it first."""
    with (path.parent / "prepared.log").open("a") as log:
        log.write(f"{path.name}\n")
    return _prepare(path, limit)


def _slow_logged_prepare(path, limit):  # noqa: ANN001, ANN202 - stands in for _prepare
    """Prepare a file as _logged_prepare does, taking 50 ms (a post with large pictures)."""
    import time

    time.sleep(0.05)
    return _logged_prepare(path, limit)


def test_an_import_stopped_early_leaves_the_chunks_the_workers_are_on(app, tmp_path, monkeypatch):
    """Stopping waited for every chunk a worker had begun or been handed: with posts full of
    photos (0.6 s a picture) that was half a minute after Ctrl-C. Workers now drop the rest of
    a chunk once the import stops, and the stop waits for the file each one is on."""
    import blog.importer

    many_files(tmp_path, 200)
    log = tmp_path / "prepared.log"
    monkeypatch.setattr(blog.importer, "BATCH_SIZE", 4)
    monkeypatch.setattr(blog.importer, "PREPARE_CHUNK", 8)
    monkeypatch.setattr(blog.importer, "POOL_THRESHOLD", 1)  # prepared in worker processes
    monkeypatch.setattr(blog.importer, "_prepare", _slow_logged_prepare)
    app.config["IMPORT_WORKERS"] = 2

    def interrupted(run, batch):  # noqa: ANN001, ANN202
        raise KeyboardInterrupt  # Ctrl-C as the first batch is written

    monkeypatch.setattr(blog.importer._Run, "import_batch", interrupted)
    with pytest.raises(KeyboardInterrupt):
        run(app, tmp_path)
    prepared = len(log.read_text().splitlines())
    # The first chunk of each worker (one held the first batch), and the file each was on.
    assert prepared <= 2 * 8 + 2


def test_workers_prepare_a_bounded_number_of_files_ahead_of_the_writer(app, tmp_path, monkeypatch):
    """A writer slower than its workers (a slow disk, many cores) never holds the whole import.

    Each prepared file is held in memory until it is written: with every file handed to the
    workers at once, 100,000 files prepared faster than they are written piled up in memory.
    """
    import time

    import blog.importer

    many_files(tmp_path, 200)
    log = tmp_path / "prepared.log"
    monkeypatch.setattr(blog.importer, "BATCH_SIZE", 4)
    monkeypatch.setattr(blog.importer, "PREPARE_CHUNK", 4)
    monkeypatch.setattr(blog.importer, "PREPARED_AHEAD", 8)
    monkeypatch.setattr(blog.importer, "POOL_THRESHOLD", 1)  # prepared in worker processes
    monkeypatch.setattr(blog.importer, "_prepare", _logged_prepare)
    app.config["IMPORT_WORKERS"] = 2
    write_batch = blog.importer._Run.import_batch
    counts: list[int] = []

    def slow_writer(run, batch):  # noqa: ANN001, ANN202
        if not counts:  # the first batch: wait while the workers run ahead, as far as they may
            seen, since = -1, time.monotonic()
            started = since
            while time.monotonic() - since < 0.5 and time.monotonic() - started < 10:
                now = len(log.read_text().splitlines())
                if now != seen:
                    seen, since = now, time.monotonic()
                time.sleep(0.02)
            counts.append(seen)
        write_batch(run, batch)

    monkeypatch.setattr(blog.importer._Run, "import_batch", slow_writer)
    report = run(app, tmp_path)
    assert report.summary() == "200 created, 0 updated, 0 skipped, 0 errors"
    # The batch being written, the files prepared ahead, and a chunk each for rounding.
    bound = (
        blog.importer.BATCH_SIZE + blog.importer.PREPARED_AHEAD + 2 * blog.importer.PREPARE_CHUNK
    )
    assert counts and counts[0] <= bound


@pytest.mark.parametrize(
    "change",
    ["none", "text", "undraft"],
    ids=["the same file", "a changed file", "a draft file made public"],
)
def test_a_taken_down_article_comes_back_only_through_review(app, client, tmp_path, change):
    """Importing its file again never republishes what an admin took down: at most it submits."""
    from blog.workflow import take_down
    from tests.conftest import ADMIN

    draft = "draft: true\n" if change == "undraft" else ""
    post = write(tmp_path, "post.md", f"---\ntitle: Post\n{draft}---\nThe first text.\n")
    run(app, tmp_path)
    with app.app_context():
        if change == "undraft":  # published once, then the file said draft: true
            publish(find("post"), latest_revision(find("post")), find("post").author)
        take_down(find("post"), db.session.scalar(select(User).filter_by(email=ADMIN)), "Legal")
        db.session.commit()
    if change == "text":
        post.write_text("---\ntitle: Post\n---\nThe text, corrected.\n")
    elif change == "undraft":
        post.write_text("---\ntitle: Post\n---\nThe first text.\n")

    report = run(app, tmp_path)
    assert client.get("/articles/post").status_code == 410
    with app.app_context():
        article = find("post")
        assert article.published_revision_id is None and article.taken_down_at is not None
        if change == "text":  # the correction is kept, and waits for an admin
            assert [(e.slug, e.status) for e in report.updated] == [("post", Status.IN_REVIEW)]
            assert article.status == Status.IN_REVIEW
            assert latest_revision(article).body == "The text, corrected.\n"
            assert submits(article)[-1].revision_id == latest_revision(article).id
        else:
            assert not report.updated and article.status == Status.TAKEN_DOWN
            [skipped] = report.skipped
            assert "taken down" in skipped.reason and "review" in skipped.reason
