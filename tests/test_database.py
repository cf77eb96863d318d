"""Rules every database follows alike: the same input stores the same text on both."""

from __future__ import annotations

from sqlalchemy import select

from blog.extensions import db
from blog.models import Article, Revision

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
