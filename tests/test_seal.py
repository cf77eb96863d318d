"""The review seal: readers see exactly the text a named admin approved, labelled as it was made."""

from __future__ import annotations

import base64
import hashlib
import json
from datetime import UTC, datetime, timedelta
from xml.etree import ElementTree

import pytest
from sqlalchemy import select

from blog.articles import source_text
from blog.extensions import db
from blog.models import Article, AuditEntry, ReviewEvent, Revision, SealedRevisionError, Status

from .conftest import AUTHOR, parse
from .test_api import GOOD, post
from .test_studio import editor_fields, revisions_of


@pytest.fixture
def api_draft(client, runner) -> int:
    """An AI draft sent through the API by the demo author's pipeline: revision 1 is the AI's."""
    result = runner.invoke(args=["token", "create", AUTHOR, "--name", "pipeline"])
    token = result.stdout.strip().splitlines()[0]
    response = post(client, token, GOOD)
    assert response.status_code == 201
    return response.json["id"]


def _approve(admin_client, article_id: int) -> None:
    """Approve from the review page, with the revision the page showed."""
    form = parse(admin_client.get(f"/review/{article_id}")).select_one("form.decision-form")
    fields = {field["name"]: field.get("value", "") for field in form.select("input[name]")}
    fields["action"] = "approve"
    response = admin_client.post(f"/review/{article_id}/decide", data=fields)
    assert response.status_code == 302


def _slug(app, article_id: int) -> str:
    with app.app_context():
        return db.session.get(Article, article_id).slug


# -- 1. approved text never changes -----------------------------------------------------------


def test_an_autosave_after_approval_never_rewrites_the_approved_revision(
    app, client, author_client, admin_client, api_draft
):
    editor = author_client.get(f"/studio/{api_draft}/edit")
    fields = editor_fields(editor)  # one editing session, S, for every request below
    fields["body"] += "\nA sentence the author added.\n"
    author_client.post(f"/studio/{api_draft}/autosave", data=fields)
    assert author_client.post(f"/studio/{api_draft}/submit").status_code == 302
    _approve(admin_client, api_draft)
    approved = revisions_of(app, api_draft)[-1]
    slug = _slug(app, api_draft)

    fields["body"] += "\nAn unreviewed sentence.\n"  # the same editing session S types on
    assert author_client.post(f"/studio/{api_draft}/autosave", data=fields).status_code == 200

    revisions = revisions_of(app, api_draft)
    assert revisions[approved.number - 1].body == approved.body  # untouched
    assert revisions[-1].number == approved.number + 1
    assert "An unreviewed sentence." in revisions[-1].body
    for path in (f"/articles/{slug}", f"/articles/{slug}/changes", "/feed.xml"):
        text = client.get(path).get_data(as_text=True)
        assert "A sentence the author added." in text, path
        assert "An unreviewed sentence." not in text, path
    assert client.get("/?q=unreviewed").get_data(as_text=True).count("card-title") == 0
    # The next review shows what changed since the approval.
    review = parse(admin_client.get(f"/review/{api_draft}"))
    assert "An unreviewed sentence." in review.select_one("#approved-diff").get_text()


def test_a_sealed_revision_refuses_any_change_at_flush(app, api_draft):
    with app.app_context():
        revision = db.session.scalar(select(Revision).filter_by(article_id=api_draft, number=1))
        assert revision.sealed  # submitted through the API
        revision.body = "Quietly changed."
        with pytest.raises(SealedRevisionError, match="sealed"):
            db.session.flush()
        db.session.rollback()
        revision = db.session.scalar(select(Revision).filter_by(article_id=api_draft, number=1))
        revision.check_flags = "[]"  # the cached flags are not the text: allowed
        db.session.commit()


def test_approval_of_text_the_reviewer_has_not_seen_is_refused(
    app, client, author_client, admin_client, api_draft
):
    form = parse(admin_client.get(f"/review/{api_draft}")).select_one("form.decision-form")
    fields = {field["name"]: field.get("value", "") for field in form.select("input[name]")}
    edited = editor_fields(author_client.get(f"/studio/{api_draft}/edit"))
    edited["body"] += "\nSlipped in while the admin was reading.\n"
    author_client.post(f"/studio/{api_draft}/edit", data=edited)  # still in review

    fields["action"] = "approve"
    response = admin_client.post(f"/review/{api_draft}/decide", data=fields, follow_redirects=True)
    assert "the text changed since you opened it" in parse(response).select_one(".flash").text
    assert client.get(f"/articles/{_slug(app, api_draft)}").status_code == 404


# -- the digest -------------------------------------------------------------------------------


def test_approval_records_the_digest_that_readers_can_check(app, client, admin_client, api_draft):
    _approve(admin_client, api_draft)
    slug = _slug(app, api_draft)
    with app.app_context():
        article = db.session.get(Article, api_draft)
        published = db.session.get(Revision, article.published_revision_id)
        approval = db.session.scalar(
            select(ReviewEvent).filter_by(article_id=api_draft, action="approve")
        )
        expected = hashlib.sha256(source_text(published).encode()).hexdigest()
    assert published.digest == approval.digest == expected

    source = client.get(f"/articles/{slug}/source.txt")
    assert source.status_code == 200 and source.mimetype == "text/plain"
    assert hashlib.sha256(source.get_data()).hexdigest() == expected
    assert source.get_data(as_text=True).startswith(f"Title: {GOOD['title']}\n")

    changes = parse(client.get(f"/articles/{slug}/changes"))
    assert changes.select_one(".seal code").get_text() == expected
    page = parse(client.get(f"/articles/{slug}"))
    data = json.loads(page.select_one("script[type='application/ld+json']").string)
    assert data["encoding"]["sha256"] == expected
    assert data["encoding"]["contentUrl"].endswith(f"/articles/{slug}/source.txt")


@pytest.mark.parametrize("encoding", ["gzip", "br", "zstd"])
def test_the_source_goes_out_as_the_bytes_its_digest_names(
    app, client, runner, admin_client, encoding
):
    """Repr-Digest names the plain text; a compressed body is another representation (RFC 9530)
    whose digest it is not, so a client checking the header would see a mismatch."""
    token = runner.invoke(args=["token", "create", AUTHOR]).stdout.strip().splitlines()[0]
    long = {**GOOD, "body_markdown": GOOD["body_markdown"] + "\n\nMore words to compress. " * 80}
    draft = post(client, token, long).json["id"]
    _approve(admin_client, draft)
    url = f"/articles/{_slug(app, draft)}/source.txt"
    for _ in range(2):  # rendered, then served as stored
        source = client.get(url, headers={"Accept-Encoding": encoding})
        assert source.status_code == 200 and "Content-Encoding" not in source.headers
        digest = base64.b64encode(hashlib.sha256(source.data).digest()).decode()
        assert source.headers["Repr-Digest"] == f"sha-256=:{digest}:"


# -- 2. the AI label --------------------------------------------------------------------------


def test_an_edit_cannot_remove_the_ai_label(app, client, author_client, admin_client, api_draft):
    editor = author_client.get(f"/studio/{api_draft}/edit")
    box = parse(editor).select_one("#editor-form input[type=checkbox][disabled]")
    assert box is not None and box.has_attr("checked")  # shown, locked
    fields = editor_fields(editor)
    fields.pop("ai_generated", None)  # unticked, as a hostile form would send it
    fields["ai_model"] = ""
    fields["body"] += "\nEdited by a person.\n"
    author_client.post(f"/studio/{api_draft}/edit", data={**fields, "action": "submit"})
    assert revisions_of(app, api_draft)[-1].ai_generated
    _approve(admin_client, api_draft)
    slug = _slug(app, api_draft)
    page = parse(client.get(f"/articles/{slug}"))
    line = page.select_one(".post-header .provenance").get_text(" ", strip=True)
    assert line.startswith("AI-generated · Reviewed by Dennis Atonya")
    assert "gpt-test" in line  # the model stays named
    assert client.get(f"/articles/{slug}/changes").status_code == 200


def test_a_reimport_cannot_remove_the_ai_label(app, tmp_path, runner):
    post_file = tmp_path / "post.md"
    front = "---\ntitle: Imported\nslug: imported\n"
    post_file.write_text(front + "ai_generated: true\nai_model: m1\n---\nText.\n")
    assert runner.invoke(args=["import", str(post_file)]).exit_code == 0
    post_file.write_text(front + "---\nText, edited by hand.\n")
    runner.invoke(args=["import", str(post_file)])
    with app.app_context():
        article = db.session.scalar(select(Article).filter_by(slug="imported"))
        assert [r.ai_generated for r in article.revisions] == [True, True]


def test_disclosure_uses_the_proposals_vocabulary(app, client, admin_client, make_article):
    make_article("Hand written", ai_generated=False)
    human = parse(client.get("/articles/hand-written"))
    assert human.select_one("meta[name=ai-disclosure]")["content"] == "none"
    assert human.select_one(".prose")["ai-disclosure"] == "none"

    make_article("Machine written", kind="ai_original")  # an AI draft approved as it came
    ai = parse(client.get("/articles/machine-written"))
    assert ai.select_one("meta[name=ai-disclosure]")["content"] == "ai-generated"
    assert ai.select_one(".prose")["ai-disclosure"] == "ai-generated"
    assert ai.select_one(".prose")["ai-model"] == "test-model"


def test_a_mostly_rewritten_ai_draft_is_ai_assisted_and_the_reviewer_sees_the_share(
    app, client, author_client, admin_client, api_draft
):
    fields = editor_fields(author_client.get(f"/studio/{api_draft}/edit"))
    fields["body"] = "## Rewritten\n\n" + "Every word here is the author's own now. " * 20
    author_client.post(f"/studio/{api_draft}/edit", data={**fields, "action": "submit"})
    review = parse(admin_client.get(f"/review/{api_draft}"))
    assert "of the words are still the AI's" in review.select_one(".ai-share").get_text()
    _approve(admin_client, api_draft)
    page = parse(client.get(f"/articles/{_slug(app, api_draft)}"))
    assert page.select_one("meta[name=ai-disclosure]")["content"] == "ai-assisted"
    # The human-readable line stays as it is.
    assert (
        page.select_one(".post-header .provenance")
        .get_text(" ", strip=True)
        .startswith("AI-generated · Reviewed by Dennis Atonya")
    )


# -- take-down --------------------------------------------------------------------------------


def test_take_down_and_republish_through_review(
    app, client, admin_client, author_client, make_article
):
    article_id = make_article("Zeppelin maintenance", body="Airships need zeppelin hangars.")
    slug = "zeppelin-maintenance"
    page = parse(admin_client.get(f"/review/{article_id}"))
    assert page.select_one("form.take-down-form") is not None
    refused = admin_client.post(
        f"/review/{article_id}/take-down", data={"reason": ""}, follow_redirects=True
    )
    assert "Say why" in parse(refused).select_one(".flash").get_text()
    assert client.get(f"/articles/{slug}").status_code == 200

    admin_client.post(f"/review/{article_id}/take-down", data={"reason": "Factual error in §2."})
    gone = client.get(f"/articles/{slug}")
    assert gone.status_code == 410
    assert "taken down" in parse(gone).select_one("main").get_text()
    assert client.get(f"/articles/{slug}/changes").status_code == 410
    assert client.get(f"/articles/{slug}/source.txt").status_code == 410
    assert slug not in client.get("/").get_data(as_text=True)
    assert slug not in client.get("/?q=zeppelin").get_data(as_text=True)
    assert slug not in client.get("/feed.xml").get_data(as_text=True)
    assert slug not in client.get("/sitemap.xml").get_data(as_text=True)
    ElementTree.fromstring(client.get("/feed.xml").get_data())
    with app.app_context():
        event = db.session.scalar(select(ReviewEvent).filter_by(action="take_down"))
        assert event.comment == "Factual error in §2." and event.actor.name == "Dennis Atonya"
        assert db.session.scalar(select(AuditEntry).filter_by(action="take_down")) is not None
        assert db.session.get(Article, article_id).status == Status.TAKEN_DOWN

    # Back only through review: the author submits, an admin approves.
    assert author_client.post(f"/studio/{article_id}/submit").status_code == 302
    assert client.get(f"/articles/{slug}").status_code == 410
    _approve(admin_client, article_id)
    assert client.get(f"/articles/{slug}").status_code == 200
    assert slug in client.get("/?q=zeppelin").get_data(as_text=True)


def test_take_down_is_for_admins_only(author_client):
    assert author_client.post("/review/1/take-down", data={"reason": "x"}).status_code == 403


# -- cost: preview and autosave are limited per person ----------------------------------------


def test_preview_and_autosave_are_rate_limited_per_person(tmp_path, template_databases):
    from .conftest import _make_app, login

    app = _make_app(
        tmp_path,
        template_databases["demo"],
        RATELIMIT_ENABLED=True,
        PREVIEW_RATE_LIMIT="3 per minute",
        AUTOSAVE_RATE_LIMIT="2 per minute",
    )
    author, admin = app.test_client(), app.test_client()
    login(author, AUTHOR)
    login(admin, "dennis@example.com")
    answers = [author.post("/studio/preview", data={"body": "Hi"}).status_code for _ in range(4)]
    assert answers == [200, 200, 200, 429]
    assert admin.post("/studio/preview", data={"body": "Hi"}).status_code == 200  # per person
    fields = editor_fields(author.get("/studio/1/edit"))
    saves = [author.post("/studio/1/autosave", data=fields).status_code for _ in range(3)]
    assert saves[-1] == 429


def test_private_edits_of_a_published_article_leave_its_public_dates_alone(
    app, client, author_client, make_article, clock
):
    article_id = make_article("Dated", body="Public text.")
    slug = _slug(app, article_id)

    def dates() -> tuple[str, str, str]:
        feed = ElementTree.fromstring(client.get("/feed.xml").get_data())
        atom = "{http://www.w3.org/2005/Atom}"
        entry = next(e for e in feed.iter(f"{atom}entry") if slug in e.find(f"{atom}id").text)
        sitemap = client.get("/sitemap.xml").get_data(as_text=True)
        lastmod = sitemap.split(f"/articles/{slug}</loc><lastmod>")[1].split("<")[0]
        page = parse(client.get(f"/articles/{slug}"))
        modified = page.select_one("meta[property='article:modified_time']")["content"]
        return entry.find(f"{atom}updated").text, lastmod, modified

    before = dates()
    clock(datetime.now(UTC) + timedelta(hours=1))  # the edit comes an hour later
    fields = editor_fields(author_client.get(f"/studio/{article_id}/edit"))
    fields["body"] += "\nA private edit, not yet approved.\n"
    author_client.post(f"/studio/{article_id}/autosave", data=fields)
    assert dates() == before


def test_a_nul_in_the_text_still_gives_a_digest_readers_can_check(
    app, client, admin_client, runner
):
    # The database keeps no NUL (blog/database.py drops them on the way in), so a digest made
    # of the text with one named bytes nobody can fetch: source.txt failed its own check.
    token = runner.invoke(args=["token", "create", AUTHOR]).stdout.strip().splitlines()[0]
    draft = {**GOOD, "title": "Nul\x00 title", "body_markdown": "Hello\x00 world.\n" * 20}
    article_id = post(client, token, draft).json["id"]
    _approve(admin_client, article_id)
    source = client.get(f"/articles/{_slug(app, article_id)}/source.txt")
    assert b"\x00" not in source.data
    digest = base64.b64encode(hashlib.sha256(source.data).digest()).decode()
    assert source.headers["Repr-Digest"] == f"sha-256=:{digest}:"
    with app.app_context():
        article = db.session.get(Article, article_id)
        revision = db.session.get(Revision, article.published_revision_id)
        assert revision.digest == hashlib.sha256(source.data).hexdigest()
