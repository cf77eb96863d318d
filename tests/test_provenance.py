"""What readers can see of how an article was made, and hostile text in every field."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
from sqlalchemy import select

from blog.articles import add_revision, draft_from
from blog.extensions import db
from blog.models import Article, Status, User
from blog.workflow import transition

from .conftest import ADMIN, AUTHOR, as_read, decide, parse


def test_card_and_article_name_the_reviewer_and_date(client):
    soup = parse(client.get("/"))
    assert soup.select_one(".card-provenance").get_text() == (
        "AI-generated · Reviewed by Dennis Atonya on 20 Apr 2025"
    )
    article = parse(client.get("/articles/react-performance-patterns-in-2025"))
    line = article.select_one(".post-header .provenance").get_text(" ", strip=True)
    assert line.startswith("AI-generated · Reviewed by Dennis Atonya on 28 Feb 2025")
    assert "Model: claude-sonnet-4-5" in line


def test_human_articles_say_who_wrote_them(client, make_article):
    make_article("Hand written", ai_generated=False)
    soup = parse(client.get("/articles/hand-written"))
    assert soup.select_one(".post-header .provenance").get_text(strip=True) == (
        "Written by Maya Okafor"
    )
    assert soup.select_one("meta[name=ai-disclosure]")["content"] == "none"
    data = json.loads(soup.select_one("script[type='application/ld+json']").string)
    assert "creativeWorkStatus" not in data
    assert client.get("/articles/hand-written/changes").status_code == 404


def test_provenance_chips_filter(client, make_article):
    make_article("Hand written", ai_generated=False)
    human = parse(client.get("/?provenance=human"))
    assert [h.get_text(strip=True) for h in human.select(".card-title")] == ["Hand written"]
    assert human.select_one(".chips-provenance [aria-current]").get_text() == "Human-written"
    ai = parse(client.get("/?provenance=ai"))
    assert ai.select_one("#result-count").get_text().startswith("8 articles")
    assert (
        parse(client.get("/?provenance=bogus"))
        .select_one("#result-count")
        .get_text(strip=True)
        .startswith("9 articles")
    )


def test_what_the_reviewer_changed(app, client, make_article):
    body = "Most backend engineers start with one server and one database.\n"
    article_id = make_article(
        "Reviewed by hand", body=body, status=Status.DRAFT, kind="ai_original"
    )
    with app.app_context():
        article = db.session.get(Article, article_id)
        admin = db.session.scalar(select(User).filter_by(email=ADMIN))
        author = db.session.scalar(select(User).filter_by(email=AUTHOR))
        original = article.revisions[0]
        draft = replace(
            draft_from(original), body=body.replace("Most backend engineers", "Many backend teams")
        )
        add_revision(article, draft, author)
        article.status = Status.IN_REVIEW
        db.session.commit()
        transition(article, "approve", admin, **as_read(article))
        db.session.commit()
        slug = article.slug
    page = parse(client.get(f"/articles/{slug}"))
    link = page.find("a", string="What the reviewer changed")
    changes = parse(client.get(link["href"]))
    assert changes.h1.get_text() == "What the reviewer changed"
    summary = changes.select_one(".changes-summary").get_text(" ", strip=True)
    assert "test-model" in summary and "Dennis Atonya" in summary and "%" in summary
    assert [d.get_text() for d in changes.select(".diff del")] == ["Most", "engineers"]
    assert [i.get_text() for i in changes.select(".diff ins")] == ["Many", "teams"]


def test_unchanged_ai_text_says_so(client, make_article):
    make_article("Approved as written", kind="ai_original")
    soup = parse(client.get("/articles/approved-as-written/changes"))
    assert "The published text is the AI's draft, unchanged." in soup.get_text()


def test_an_ai_article_written_in_the_editor_links_to_a_page_that_says_why_no_diff(
    client, make_article
):
    # Without the AI's original (a studio article with AI ticked) the link was a 404.
    make_article("Pasted from a model")  # AI-generated, revision 1 an ordinary edit
    article = parse(client.get("/articles/pasted-from-a-model"))
    link = article.find("a", string="What the reviewer changed")
    changes = client.get(link["href"])
    assert changes.status_code == 200
    page = parse(changes)
    summary = page.select_one(".changes-summary").get_text(" ", strip=True)
    assert "was not kept" in summary and "Dennis Atonya" in summary
    assert page.select_one(".seal .digest").get_text()  # the approved text can still be checked


PAYLOAD = '"><script>alert(1)</script><img src=x onerror=alert(1)>'


@pytest.fixture
def hostile(app, client, runner) -> dict[str, int]:
    """One AI draft with a payload in every field, one published copy of it."""
    secret = runner.invoke(args=["token", "create", AUTHOR]).stdout.strip()
    body = {
        "title": f"T {PAYLOAD}",
        "summary": f"S {PAYLOAD}",
        "category": f"C {PAYLOAD}",
        "tags": [f"tag {PAYLOAD}", "<b>bold</b>"],
        "body_markdown": f"## H {PAYLOAD}\n\n{PAYLOAD}\n\n[x](javascript:alert(1))\n",
        "ai_model": f"M {PAYLOAD}",
        "prompt": PAYLOAD,
    }
    headers = {"Authorization": f"Bearer {secret}"}
    waiting = client.post("/api/drafts", json=body, headers=headers).json["id"]
    published = client.post(
        "/api/drafts", json={**body, "title": f"P {PAYLOAD}"}, headers=headers
    ).json["id"]
    with app.app_context():
        article = db.session.get(Article, published)
        admin = db.session.scalar(select(User).filter_by(email=ADMIN))
        author = db.session.scalar(select(User).filter_by(email=AUTHOR))
        revision = article.revisions[0]
        add_revision(
            article,
            replace(draft_from(revision), body=revision.body + f"\nEdited {PAYLOAD}\n"),
            author,
        )
        db.session.commit()
        transition(article, "approve", admin, **as_read(article))
        db.session.commit()
        slug = article.slug
    return {"waiting": waiting, "published": published, "slug": slug}


def _assert_inert(response) -> None:  # noqa: ANN001
    assert response.status_code == 200
    soup = parse(response)
    assert not soup.find("img")
    scripts = [s for s in soup.find_all("script") if not s.get("src")]
    assert all(s.get("type") == "application/ld+json" for s in scripts)
    for tag in soup.find_all(True):
        assert not [a for a in tag.attrs if a.startswith("on")], tag
        assert not str(tag.get("href", "")).lower().startswith("javascript:")


def test_hostile_fields_are_inert_everywhere(client, admin_client, author_client, hostile):
    slug = hostile["slug"]
    for response in (
        admin_client.get("/review/"),
        admin_client.get(f"/review/{hostile['waiting']}"),
        admin_client.get(f"/review/{hostile['published']}"),
        admin_client.get("/review/audit"),
        author_client.get("/studio/"),
        author_client.get(f"/studio/{hostile['waiting']}/edit"),
        author_client.get(f"/studio/{hostile['published']}/history"),
        author_client.get(f"/studio/{hostile['published']}/diff?a=1&b=2"),
        client.get("/"),
        client.get("/?q=alert"),
        client.get(f"/articles/{slug}"),
        client.get(f"/articles/{slug}/changes"),
    ):
        _assert_inert(response)
    assert "<script>alert(1)</script>" not in client.get("/feed.xml").get_data(as_text=True)


def _editor_fields(client, article_id: int) -> dict[str, str]:  # noqa: ANN001
    form = parse(client.get(f"/studio/{article_id}/edit")).select_one("#editor-form")
    fields = {
        el["name"]: (el.get_text() if el.name == "textarea" else el.get("value", ""))
        for el in form.select("input[name], textarea[name]")
        if el.get("type") != "checkbox" or el.has_attr("checked")
    }
    return fields


@pytest.mark.parametrize("now_ai", [True, False])
def test_the_public_label_changes_only_when_the_new_text_is_approved(
    app, client, author_client, admin_client, make_article, now_ai
):
    article_id = make_article("Labelled", body="Original words.", ai_generated=not now_ai)
    before = "Written by Maya Okafor" if now_ai else "AI-generated · Reviewed by Dennis Atonya"
    after = "AI-generated · Reviewed by Dennis Atonya" if now_ai else "Written by Maya Okafor"

    def label() -> str:
        soup = parse(client.get("/articles/labelled"))
        return soup.select_one(".post-header .provenance").get_text(" ", strip=True)

    fields = _editor_fields(author_client, article_id)
    fields.pop("ai_generated", None)
    fields.update(body="New words.", action="submit")
    if now_ai:
        fields.update(ai_generated="1", ai_model="model-x")
    author_client.post(f"/studio/{article_id}/edit", data=fields)
    assert label().startswith(before)  # the public text is still the old one, and so is its label
    review = parse(admin_client.get(f"/review/{article_id}"))
    assert review.select_one(".review-preview .provenance").get_text().startswith(after[:12])
    decide(admin_client, article_id, {"action": "approve"})
    assert label().startswith(after)
