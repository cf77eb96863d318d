"""The drafts API: tokens, creating drafts, idempotent retries and every kind of bad request."""

from __future__ import annotations

import json
import logging

import pytest
from limits import parse_many
from sqlalchemy import select

from blog.api import DRAFT_RATE_LIMIT
from blog.extensions import db
from blog.models import ApiToken, Article, Revision, Status

from .conftest import ADMIN, AUTHOR, decide

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
    assert answer["review_url"] == f"http://blog.test/review/{answer['id']}"
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
        # No letter or digit: no category page could hold it, and the article showed none.
        ({**GOOD, "category": "!!!"}, ["category"]),
        ({**GOOD, "tags": ["Redis", "!!!"]}, ["tags"]),  # it was dropped without a word
        # A comma separates tags inside an item too: these were stored, 20 tags and "***".
        ({**GOOD, "tags": ["rust, ***"]}, ["tags"]),
        ({**GOOD, "tags": [",".join(f"t{n}" for n in range(20))]}, ["tags"]),
        # More cells than a table may hold (rows x columns, short rows filled in by GFM).
        (
            {**GOOD, "body_markdown": "|" + "a|" * 400 + "\n|" + "-|" * 400 + "\n" + "b\n" * 20},
            ["body_markdown"],
        ),
        # Tables of 5,000 cells each, more than a body's tables may hold in all.
        (
            {
                **GOOD,
                "body_markdown": ("|" + "a|" * 50 + "\n|" + "-|" * 50 + "\n" + "b\n" * 99 + "\n")
                * 3,
            },
            ["body_markdown"],
        ),
        ([GOOD], [""]),
        ("just a string", [""]),
    ],
)
def test_bad_bodies_name_each_field(client, token, body, fields):
    response = post(client, token, body)
    assert response.status_code == 422
    assert [error["field"] for error in response.json["errors"]] == fields


@pytest.mark.parametrize(
    "tags",
    [
        # One item over 80 characters holding short names: the API refused it before splitting.
        [", ".join(f"name{n}" for n in range(12))],
        # Thirteen items that are one tag: the API counted items, not tags.
        ["Redis"] * 13,
    ],
)
def test_tags_are_judged_as_they_will_be_stored(app, client, token, tags):
    response = post(client, token, {**GOOD, "tags": tags})
    assert response.status_code == 201, response.json
    with app.app_context():
        revision = db.session.scalar(select(Revision).order_by(Revision.id.desc()).limit(1))
        assert revision.tag_names == list(
            dict.fromkeys(name.strip() for item in tags for name in item.split(","))
        )


def test_tags_longer_than_the_forms_field_are_refused_before_they_are_split(client, token):
    # Split and judged one by one, 75,000 names took 0.46 s to refuse (the body limit allows it).
    tags = [",".join(f"t{n}" for n in range(75_000))]
    response = post(client, token, {**GOOD, "tags": tags})
    assert response.status_code == 422
    assert response.json["errors"] == [
        {"field": "tags", "message": "The tags are longer than 2,000 characters in all."}
    ]


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
    decide(
        admin_client, draft["id"], {"action": "request_changes", "comment": "Add numbers, please."}
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


def test_links_ignore_a_forged_host_header(tmp_path, template_databases):
    from .conftest import _make_app, login

    # Even where a second host name is served (TRUSTED_HOSTS), links name SITE_URL's host.
    hosts = ["evil.example", "localhost", "blog.test"]
    app = _make_app(tmp_path, template_databases["demo"], TRUSTED_HOSTS=hosts)
    token = app.test_cli_runner().invoke(args=["token", "create", AUTHOR]).stdout.strip()
    client, admin_client = app.test_client(), app.test_client()
    assert login(admin_client, ADMIN).status_code == 302
    forged = {"Host": "evil.example"}
    draft = post(client, token, GOOD, **forged).json
    assert draft["review_url"] == f"http://blog.test/review/{draft['id']}"
    decide(admin_client, draft["id"], {"action": "approve", "comment": ""})
    response = client.get(
        f"/api/drafts/{draft['id']}", headers={"Authorization": f"Bearer {token}", **forged}
    )
    assert response.json["status"] == "published"
    assert response.json["public_url"] == f"http://blog.test/articles/{draft['slug']}"
    assert response.json["review_url"].startswith("http://blog.test/")


def send(client, token: str, raw: bytes | str, content_type: str = "application/json"):  # noqa: ANN001, ANN201
    """Post a raw body, as a misbehaving client would."""
    return client.post(
        "/api/drafts",
        data=raw,
        headers={"Authorization": f"Bearer {token}", "Content-Type": content_type},
    )


def count_articles(app) -> int:  # noqa: ANN001
    with app.app_context():
        return db.session.query(Article).count()


@pytest.mark.parametrize(
    "raw",
    [
        "[" * 100_000,
        '{"title": ' * 50_000,
        "[" * 100_000 + "]" * 100_000,
        '{"a": ' * 10_000 + "1" + "}" * 10_000,
        b"\xff\xfe\x00garbage",
        "",
        "1" * 5000,  # more digits than Python will turn into an int
    ],
    ids=["open-brackets", "open-objects", "deep-list", "deep-object", "bytes", "empty", "digits"],
)
def test_malformed_json_is_400_with_a_list_of_errors(app, client, token, raw):
    before = count_articles(app)
    response = send(client, token, raw)
    assert response.status_code == 400
    assert response.json["error"] and response.json["errors"][0]["field"] == ""
    assert count_articles(app) == before


def test_text_that_is_not_unicode_is_422(app, client, token):
    before = count_articles(app)
    # JSON may escape a lone surrogate, which no database can store as text.
    raw = json.dumps(GOOD).replace("Rate limiting", "Rate \\ud800 limiting")
    response = send(client, token, raw)
    assert response.status_code == 422
    assert [error["field"] for error in response.json["errors"]] == ["title"]
    tags = json.dumps({**GOOD, "tags": ["ok"]}).replace('"ok"', '"\\udfff"')
    assert send(client, token, tags).status_code == 422
    assert count_articles(app) == before


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", ""])
def test_bodies_that_are_not_json_are_415(client, token, content_type):
    response = send(client, token, json.dumps(GOOD), content_type)
    assert response.status_code == 415 and response.json["error"]


def limited_app(tmp_path, template_databases, **config: object):  # noqa: ANN001, ANN201
    from .conftest import _make_app

    return _make_app(tmp_path, template_databases["demo"], RATELIMIT_ENABLED=True, **config)


def test_creating_drafts_is_rate_limited_per_token(tmp_path, template_databases):
    app = limited_app(tmp_path, template_databases, API_DRAFT_RATE_LIMIT="2 per minute")
    runner = app.test_cli_runner()
    first = runner.invoke(args=["token", "create", AUTHOR]).stdout.strip()
    second = runner.invoke(args=["token", "create", AUTHOR]).stdout.strip()
    client = app.test_client()
    for n in range(2):
        assert post(client, first, {**GOOD, "title": f"Draft {n}"}).status_code == 201
    before = count_articles(app)
    response = post(client, first, {**GOOD, "title": "One too many"})
    assert response.status_code == 429
    assert response.json["error"] and response.json["errors"][0]["field"] == ""
    assert 0 < int(response.headers["Retry-After"]) <= 60
    assert count_articles(app) == before
    # The limit belongs to the token, not to the address both tokens come from.
    assert post(client, second, {**GOOD, "title": "Another pipeline"}).status_code == 201


def test_the_default_creation_limit_is_per_minute_and_per_day():
    windows = sorted(limit.get_expiry() for limit in parse_many(DRAFT_RATE_LIMIT))
    assert windows == [60, 86_400]


def test_status_is_rate_limited_per_token(tmp_path, template_databases):
    app = limited_app(tmp_path, template_databases, API_STATUS_RATE_LIMIT="3 per minute")
    secret = app.test_cli_runner().invoke(args=["token", "create", AUTHOR]).stdout.strip()
    client = app.test_client()
    draft = post(client, secret, GOOD).json
    auth = {"Authorization": f"Bearer {secret}"}
    codes = [client.get(f"/api/drafts/{draft['id']}", headers=auth).status_code for _ in range(4)]
    assert codes == [200, 200, 200, 429]
    response = client.get(f"/api/drafts/{draft['id']}", headers=auth)
    assert response.status_code == 429 and response.json["errors"]
    assert int(response.headers["Retry-After"]) > 0


def test_a_title_or_body_of_nul_characters_only_is_empty(client, token):
    # The database keeps no NUL, so "\x00" would be stored as an empty title.
    response = post(client, token, {**GOOD, "title": "\x00\x00", "body_markdown": "\x00 \n"})
    assert response.status_code == 422
    assert {error["field"] for error in response.json["errors"]} >= {"title", "body_markdown"}
