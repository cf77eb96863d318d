"""The JSON API through which AI tools send drafts: bearer tokens, idempotent retries.

Tokens are shown once and stored as a SHA-256 digest. An Idempotency-Key is stored with the first
answer in the same transaction as the draft it created, so a retry (or two racing requests with
the same key) gets that answer back instead of a second draft.

Each token has its own rate limits (the same address may carry many pipelines, and one address
may be a whole office behind NAT): API_DRAFT_RATE_LIMIT for creating drafts and
API_STATUS_RATE_LIMIT for asking where one stands, both Flask-Limiter strings.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import time
from typing import Any

from flask import Blueprint, Response, current_app, jsonify, request, url_for
from flask_limiter import RateLimitExceeded
from flask_limiter.util import get_remote_address
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from . import clock
from .articles import SUMMARY_MAX, TAGS_FIELD_MAX, TITLE_MAX, Draft, create_article
from .audit import record
from .content import MAX_BODY_CHARS
from .extensions import csrf, db, limiter
from .models import ApiToken, Article, IdempotentResponse, ReviewEvent, Status, User
from .params import SQLITE_INT_MAX
from .sqlite import writes
from .templating import absolute_url
from .workflow import ACTION_LABELS, enter_review

bp = Blueprint("api", __name__, url_prefix="/api")
csrf.exempt(bp)  # bearer tokens, not cookies: there is no ambient credential to forge

TOKEN_PREFIX = "tbk_"
# A pipeline sends a draft every few seconds at most; a runaway loop stops within a minute.
DRAFT_RATE_LIMIT = "60 per minute;1000 per day"
# Tools poll for a verdict; twice a second is already impolite.
STATUS_RATE_LIMIT = "120 per minute"
FIELD_LIMITS = {
    "summary": SUMMARY_MAX,
    "category": 80,
    "ai_model": 120,
    "prompt": 20_000,
    "body_markdown": MAX_BODY_CHARS,
}
PUBLIC_STATUSES = {
    Status.DRAFT: "in_review",  # a withdrawn draft is still waiting, from the tool's side
    Status.IN_REVIEW: "in_review",
    Status.CHANGES_REQUESTED: "changes_requested",
    Status.REJECTED: "rejected",
    Status.SCHEDULED: "published",
    Status.PUBLISHED: "published",
}


def hash_token(secret: str) -> str:
    """Return the digest a token is stored as."""
    return hashlib.sha256(secret.encode()).hexdigest()


def create_token(user: User, name: str = "") -> tuple[ApiToken, str]:
    """Create a token for a user; return it and the secret, which is never stored."""
    secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = ApiToken(
        user=user,
        name=name.strip()[:120],
        token_hash=hash_token(secret),
        prefix=secret[: len(TOKEN_PREFIX) + 6],
    )
    db.session.add(token)
    return token, secret


def _problem(status: int, message: str, errors: list[dict[str, Any]] | None = None) -> Response:
    response = jsonify(error=message, errors=errors or [])
    response.status_code = status
    if status == 401:
        response.headers["WWW-Authenticate"] = 'Bearer realm="api"'
    return response


def _bearer_secret() -> str:
    """Return the secret in the Authorization header, or "" when there is none."""
    scheme, _, secret = request.headers.get("Authorization", "").partition(" ")
    return secret.strip() if scheme.lower() == "bearer" else ""


def _rate_limit_key() -> str:
    """Count requests per token (its digest, as stored), never per address."""
    secret = _bearer_secret()
    if secret:
        return "api-token:" + hash_token(secret)
    # No token at all: these are 401s, counted by address so they cost a scanner something.
    return "api-anonymous:" + get_remote_address()


def _draft_rate_limit() -> str:
    return current_app.config.get("API_DRAFT_RATE_LIMIT") or DRAFT_RATE_LIMIT


def _status_rate_limit() -> str:
    return current_app.config.get("API_STATUS_RATE_LIMIT") or STATUS_RATE_LIMIT


@bp.errorhandler(RateLimitExceeded)
def _too_many_requests(error: RateLimitExceeded) -> Response:
    """Answer a breached limit in the API's own error shape, saying when to try again."""
    response = _problem(
        429,
        f"Too many requests for this token ({error.description}); try again later.",
        [{"field": "", "message": f"Rate limit exceeded: {error.description}."}],
    )
    current = limiter.current_limit
    wait = int(current.reset_at - time.time()) if current is not None else 60
    # Flask-Limiter rewrites this header when its headers are on; this covers when they are off.
    response.headers["Retry-After"] = str(max(1, wait))
    return response


def _authenticate() -> ApiToken | None:
    """Find the live token in the Authorization header, or None."""
    secret = _bearer_secret()
    if not secret:
        return None
    token = db.session.scalar(
        select(ApiToken).filter_by(token_hash=hash_token(secret), revoked_at=None)
    )
    if token is None or not token.user.active:
        return None
    return token


NOT_UNICODE = "{name} holds an escaped lone surrogate (\\ud800-\\udfff), which is not text."


def _is_unicode(value: str) -> bool:
    """Say whether text can be stored: JSON may escape lone surrogates that UTF-8 cannot hold."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _decode(raw: bytes) -> tuple[Any, str]:
    """Parse a JSON body; return the value and "" or None and what is wrong with it."""
    try:
        return json.loads(raw), ""
    except RecursionError:
        # json.loads recurses once per [ or {: "[" * 100000 would otherwise be a 500.
        return None, "The body is nested too deeply to be a draft."
    except ValueError:  # also UnicodeDecodeError and ints longer than Python will convert
        return None, "The body is not valid JSON."


PAYLOAD_NAMES = {"body": "body_markdown"}  # Draft's field names that differ from the JSON's


def _validate(payload: Any) -> tuple[dict[str, Any], list[dict[str, str]]]:
    """Check a draft's JSON; return the clean fields and a list naming each bad one."""
    if not isinstance(payload, dict):
        return {}, [{"field": "", "message": "The body must be a JSON object."}]
    errors: list[dict[str, str]] = []
    clean: dict[str, Any] = {}

    def text(name: str, required: bool, limit: int) -> None:
        value = payload.get(name)
        if value is None or (isinstance(value, str) and not value.strip()):
            if required:
                errors.append({"field": name, "message": f"{name} is required."})
            clean[name] = ""
        elif not isinstance(value, str):
            errors.append({"field": name, "message": f"{name} must be a string."})
        elif not _is_unicode(value):
            errors.append({"field": name, "message": NOT_UNICODE.format(name=name)})
        elif len(value) > limit:
            errors.append(
                {"field": name, "message": f"{name} is longer than {limit:,} characters."}
            )
        else:
            clean[name] = value

    text("title", True, TITLE_MAX)
    text("body_markdown", True, FIELD_LIMITS["body_markdown"])
    text("summary", False, FIELD_LIMITS["summary"])
    text("category", False, FIELD_LIMITS["category"])
    text("ai_model", False, FIELD_LIMITS["ai_model"])
    text("prompt", False, FIELD_LIMITS["prompt"])
    tags = payload.get("tags", [])
    if tags is None:
        tags = []
    if not isinstance(tags, list) or not all(isinstance(tag, str) for tag in tags):
        errors.append({"field": "tags", "message": "tags must be a list of strings."})
    elif sum(len(tag) + 2 for tag in tags) > TAGS_FIELD_MAX:  # as the form's field: "a, b"
        message = f"The tags are longer than {TAGS_FIELD_MAX:,} characters in all."
        errors.append({"field": "tags", "message": message})
    elif not all(_is_unicode(tag) for tag in tags):
        errors.append({"field": "tags", "message": NOT_UNICODE.format(name="a tag")})
    else:
        # Their count and length are Draft.problems' to judge, once split as they will be stored.
        clean["tags"] = tags
    return clean, errors


def _draft_answer(article: Article) -> dict[str, Any]:
    return {
        "id": article.id,
        "slug": article.slug,
        "status": PUBLIC_STATUSES.get(Status(article.status), article.status),
        # absolute_url uses SITE_URL: a forged Host header must not reach a reviewer's link.
        "review_url": absolute_url("review.draft", article_id=article.id),
    }


@bp.post("/drafts")
@limiter.limit(_draft_rate_limit, key_func=_rate_limit_key)
def create_draft() -> Response:
    """Create an AI-generated draft in the review queue."""
    if not request.is_json:
        return _problem(415, "Send the draft as JSON (Content-Type: application/json).")
    limit = current_app.config["API_MAX_BODY_BYTES"]
    if request.content_length is not None and request.content_length > limit:
        return _problem(413, f"The body is larger than {limit:,} bytes.")
    token = _authenticate()
    if token is None:
        return _problem(401, "A valid API token is required (Authorization: Bearer <token>).")
    raw = request.get_data(cache=True)
    if len(raw) > limit:
        return _problem(413, f"The body is larger than {limit:,} bytes.")
    payload, wrong = _decode(raw)
    if wrong:
        return _problem(400, wrong, [{"field": "", "message": wrong}])

    key = request.headers.get("Idempotency-Key", "").strip()[:200]
    request_hash = hashlib.sha256(raw).hexdigest()
    if key:
        replay = _replay(token, key, request_hash)
        if replay is not None:
            return replay

    fields, errors = _validate(payload)
    if errors:
        return _problem(422, "The draft has problems; nothing was created.", errors)

    draft = Draft(
        title=fields["title"].strip(),
        body=fields["body_markdown"],
        summary=fields["summary"],
        category=fields["category"],
        tags=fields["tags"],
    )
    problems = draft.problems()
    if problems:
        return _problem(
            422,
            "The draft has problems; nothing was created.",
            # Named as the JSON names them (the draft's `body` is `body_markdown` here).
            [{"field": PAYLOAD_NAMES.get(k, k), "message": v} for k, v in problems.items()],
        )
    user = token.user
    article, revision = create_article(
        draft,
        user,
        ai_generated=True,
        ai_model=fields["ai_model"].strip() or None,
        kind="ai_original",
        note="sent through the API",
    )
    article.ai_prompt = fields["prompt"] or None
    enter_review(article, revision, user, f"Sent through the API ({token.name or token.prefix})")
    token.last_used_at = clock.now()
    record("token_used", user, f"token {token.prefix}… created draft {article.slug}")
    answer = _draft_answer(article)
    body = json.dumps(answer)
    if key:
        db.session.add(
            IdempotentResponse(
                token_id=token.id, key=key, request_hash=request_hash, status_code=201, body=body
            )
        )
    try:
        db.session.commit()
    except IntegrityError:  # the same key won a race a moment ago: answer as it did
        db.session.rollback()
        replay = _replay(token, key, request_hash)
        if replay is not None:
            return replay
        raise
    response = Response(body, 201, mimetype="application/json")
    response.headers["Location"] = url_for("api.get_draft", article_id=article.id)
    return response


def _replay(token: ApiToken, key: str, request_hash: str) -> Response | None:
    """Return the stored answer for a key, a 422 if the key came with another body, or None."""
    stored = db.session.scalar(select(IdempotentResponse).filter_by(token_id=token.id, key=key))
    if stored is None:
        return None
    if stored.request_hash != request_hash:
        return _problem(
            422,
            "This Idempotency-Key was used with a different body.",
            [{"field": "Idempotency-Key", "message": "Use a new key for a new draft."}],
        )
    response = Response(stored.body, stored.status_code, mimetype="application/json")
    response.headers["Idempotent-Replayed"] = "true"
    return response


# Bounded: a larger id cannot be bound by SQLite (an OverflowError, a 500), so it never matches.
@bp.get(f"/drafts/<int(max={SQLITE_INT_MAX}):article_id>")
@limiter.limit(_status_rate_limit, key_func=_rate_limit_key)
@writes
def get_draft(article_id: int) -> Response:
    """Say where a draft stands, with the reviewers' comments."""
    token = _authenticate()
    if token is None:
        return _problem(401, "A valid API token is required (Authorization: Bearer <token>).")
    article = db.session.get(Article, article_id)
    if article is None or not (article.author_id == token.user_id or token.user.is_admin):
        return _problem(404, "No such draft for this token.")
    token.last_used_at = clock.now()
    db.session.commit()
    events = db.session.scalars(
        select(ReviewEvent)
        .where(ReviewEvent.article_id == article.id)
        .order_by(ReviewEvent.created_at, ReviewEvent.id)
    ).all()
    answer = _draft_answer(article)
    answer.update(
        title=article.title,
        public_url=absolute_url("public.article", slug=article.slug)
        if article.is_public()
        else None,
        comments=[
            {
                "action": e.action,
                "label": ACTION_LABELS.get(e.action, e.action),
                "comment": e.comment,
                "by": e.actor.name,
                "at": e.created_at.isoformat(timespec="seconds").replace("+00:00", "Z"),
            }
            for e in events
            if e.actor_id != article.author_id or e.comment
        ],
    )
    return jsonify(answer)


# Images for drafts: the same token, rate limit and idempotency as /api/drafts.
@bp.post("/media")
@limiter.limit(_draft_rate_limit, key_func=_rate_limit_key)
def create_media() -> Response:
    """Store an image sent as a multipart `file`; answer with a URL a draft's Markdown can use."""
    from .media import MediaError, process, save
    from .media_views import read_upload, upload_body_limit
    from .storage import UNAVAILABLE, StorageUnavailable

    token = _authenticate()
    if token is None:
        return _problem(401, "A valid API token is required (Authorization: Bearer <token>).")
    # The JSON limit (API_MAX_BODY_BYTES) is for drafts; an image may be larger.
    request.max_content_length = upload_body_limit()
    try:
        data = read_upload()
    except MediaError as error:
        return _problem(error.status, error.message, [{"field": "file", "message": error.message}])
    key = request.headers.get("Idempotency-Key", "").strip()[:200]
    request_hash = hashlib.sha256(b"media:" + data).hexdigest()
    if key:
        replay = _replay(token, key, request_hash)
        if replay is not None:
            return replay
    token_id, user_id = token.id, token.user_id
    db.session.commit()  # no transaction (no write lock) held while Pillow decodes
    try:
        processed = process(data)
    except MediaError as error:
        return _problem(error.status, error.message, [{"field": "file", "message": error.message}])
    try:
        media = save(processed, user_id)
    except StorageUnavailable:
        db.session.rollback()
        current_app.logger.exception("an image sent through the API could not be stored")
        return _problem(503, UNAVAILABLE)
    token = db.session.get(ApiToken, token_id)
    token.last_used_at = clock.now()
    url = url_for("media.file", name=media.key)
    body = json.dumps({"url": url, "width": media.width, "height": media.height})
    if key:
        db.session.add(
            IdempotentResponse(
                token_id=token_id, key=key, request_hash=request_hash, status_code=201, body=body
            )
        )
    try:
        db.session.commit()
    except IntegrityError:  # the same key (or the same image) won a race a moment ago
        db.session.rollback()
        replay = _replay(token, key, request_hash) if key else None
        if replay is not None:
            return replay
        raise
    response = Response(body, 201, mimetype="application/json")
    response.headers["Location"] = url
    return response
