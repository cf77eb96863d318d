"""The drafts API: tokens, creating drafts, idempotent retries and every kind of bad request."""

from __future__ import annotations

import json
import logging

import pytest
from sqlalchemy import select

from blog.extensions import db
from blog.models import ApiToken, Article, Revision, Status

from .conftest import ADMIN, AUTHOR

GOOD = {
    "title": "Rate limiting with Redis",
    "summary": "Token buckets in practice.",
    "category": "Backend",
    "tags": ["Redis", "Performance"],
    "body_markdown": "## Buckets\n\nA token bucket refills at a fixed rate.\n",
    "ai_model": "gpt-test",
    "prompt": "Write about rate limits.",
}


@pytest.fixture
def token(runner) -> str:
    result = runner.invoke(args=["token", "create", AUTHOR, "--name", "pipeline"])
    assert result.exit_code == 0, result.output
    return result.stdout.strip().splitlines()[0]


def post(client, token: str, body: object, **headers: str):  # noqa: ANN001, ANN201
    return client.post(
        "/api/drafts",
        data=json.dumps(body),
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json", **headers},
    )


def test_token_is_printed_once_and_stored_hashed(app, token):
    assert token.startswith("tbk_")
    with app.app_context():
        stored = db.session.scalar(select(ApiToken))
        assert stored.token_hash != token and token not in stored.token_hash
        assert stored.name == "pipeline" and token.startswith(stored.prefix)


def test_create_a_draft(app, client, token):
    response = post(client, token, GOOD)
    assert response.status_code == 201
    answer = response.json
    assert answer["status"] == "in_review" and answer["slug"] == "rate-limiting-with-redis"
    assert answer["review_url"] == f"http://localhost/review/{answer['id']}"
    assert response.headers["Location"] == f"/api/drafts/{answer['id']}"
    with app.app_context():
        article = db.session.get(Article, answer["id"])
        assert article.ai_generated and article.ai_model == "gpt-test"
        assert article.status == Status.IN_REVIEW and article.author.email == AUTHOR
        assert article.ai_prompt == "Write about rate limits."
        [revision] = db.session.scalars(select(Revision).filter_by(article_id=article.id)).all()
        assert revision.kind == "ai_original" and revision.body == GOOD["body_markdown"]
        assert db.session.scalar(select(ApiToken)).last_used_at is not None
    # A draft is not public.
    assert client.get("/articles/rate-limiting-with-redis").status_code == 404


def test_idempotency_key_makes_a_retry_safe(app, client, token):
    first = post(client, token, GOOD, **{"Idempotency-Key": "abc"})
    again = post(client, token, GOOD, **{"Idempotency-Key": "abc"})
    assert first.status_code == again.status_code == 201
    assert again.json == first.json and again.headers["Idempotent-Replayed"] == "true"
    with app.app_context():
        assert db.session.query(Article).filter_by(title=GOOD["title"]).count() == 1
    other = post(client, token, {**GOOD, "title": "Another"}, **{"Idempotency-Key": "abc"})
    assert other.status_code == 422 and other.json["errors"][0]["field"] == "Idempotency-Key"
    assert post(client, token, GOOD, **{"Idempotency-Key": "def"}).status_code == 201


@pytest.mark.parametrize("header", ["", "Bearer", "Bearer nope", "Basic abc", "bearer  "])
def test_bad_tokens_are_401(client, header):
    response = client.post("/api/drafts", json=GOOD, headers={"Authorization": header})
    assert response.status_code == 401 and response.json["error"]
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_revoked_token_and_deactivated_owner_are_401(app, client, token, runner):
    assert post(client, token, GOOD).status_code == 201
    runner.invoke(args=["user", "deactivate", AUTHOR])
    assert post(client, token, GOOD).status_code == 401


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        ({}, ["title", "body_markdown"]),
        ({**GOOD, "title": 5}, ["title"]),
        ({**GOOD, "tags": "a, b"}, ["tags"]),
        ({**GOOD, "tags": [1, 2]}, ["tags"]),
        ({**GOOD, "tags": [f"t{n}" for n in range(20)]}, ["tags"]),
        ({**GOOD, "title": "x" * 301}, ["title"]),
        ({**GOOD, "body_markdown": "   "}, ["body_markdown"]),
        ({**GOOD, "summary": ["no"]}, ["summary"]),
        ([GOOD], [""]),
        ("just a string", [""]),
    ],
)
def test_bad_bodies_name_each_field(client, token, body, fields):
    response = post(client, token, body)
    assert response.status_code == 422
    assert [error["field"] for error in response.json["errors"]] == fields


def test_invalid_json_is_400(client, token):
    response = client.post(
        "/api/drafts",
        data="{not json",
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    assert response.status_code == 400 and response.json["errors"]


def test_wrong_content_type_is_415(client, token):
    response = client.post(
        "/api/drafts", data="title=x", headers={"Authorization": f"Bearer {token}"}
    )
    assert response.status_code == 415


def test_too_large_is_413(app, client, token):
    app.config["API_MAX_BODY_BYTES"] = 1000
    response = post(client, token, {**GOOD, "body_markdown": "x" * 2000})
    assert response.status_code == 413 and "larger" in response.json["error"]


def test_status_and_comments(app, client, token, admin_client):
    draft = post(client, token, GOOD).json
    admin_client.post(
        f"/review/{draft['id']}/decide",
        data={"action": "request_changes", "comment": "Add numbers, please."},
    )
    response = client.get(
        f"/api/drafts/{draft['id']}", headers={"Authorization": f"Bearer {token}"}
    )
    assert response.status_code == 200
    assert response.json["status"] == "changes_requested"
    assert response.json["comments"][-1]["comment"] == "Add numbers, please."
    assert response.json["comments"][-1]["by"] == "Dennis Atonya"


def test_status_of_someone_elses_draft_is_404(app, client, token, runner):
    draft = post(client, token, GOOD).json
    other = runner.invoke(
        args=["user", "create", "x@example.com", "--name", "X", "--password", "long enough"]
    )
    assert other.exit_code == 0
    second = runner.invoke(args=["token", "create", "x@example.com"]).stdout.strip()
    response = client.get(
        f"/api/drafts/{draft['id']}", headers={"Authorization": f"Bearer {second}"}
    )
    assert response.status_code == 404
    admin_token = runner.invoke(args=["token", "create", ADMIN]).stdout.strip()
    response = client.get(
        f"/api/drafts/{draft['id']}", headers={"Authorization": f"Bearer {admin_token}"}
    )
    assert response.status_code == 200


def test_tokens_never_reach_the_logs(app, client, token, caplog):
    with caplog.at_level(logging.DEBUG):
        post(client, token, GOOD)
        post(client, "tbk_wrong", GOOD)
    assert token not in caplog.text and "tbk_wrong" not in caplog.text
    with app.app_context():
        from blog.models import AuditEntry

        details = " ".join(e.detail for e in db.session.scalars(select(AuditEntry)))
        assert token not in details


def test_api_needs_no_csrf_token(tmp_path, template_databases):
    from .conftest import _make_app

    app = _make_app(tmp_path, template_databases["demo"], WTF_CSRF_ENABLED=True)
    secret = app.test_cli_runner().invoke(args=["token", "create", AUTHOR]).stdout.strip()
    assert post(app.test_client(), secret, GOOD).status_code == 201
