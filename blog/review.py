"""The admin's side: the review queue, the review page and decisions; users, tokens, audit log."""

from __future__ import annotations

from datetime import UTC, datetime

from flask import Blueprint, Response, abort, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required
from sqlalchemy import func, or_, select

from .api import create_token
from .articles import ai_original, ai_share, latest_revision, latest_revisions
from .audit import record
from .auth import admin_required
from .checks import quick_flags, run_checks
from .content import render
from .diff import diff_texts
from .extensions import db
from .htmx import render_page
from .models import (
    ApiToken,
    Article,
    AuditEntry,
    ReviewEvent,
    Revision,
    Role,
    Status,
    User,
    utcnow,
)
from .params import MAX_PAGE, clamped_int
from .workflow import TransitionError, allowed_actions, history, take_down, transition

bp = Blueprint("review", __name__, url_prefix="/review")

DECISIONS = ("approve", "schedule", "request_changes", "reject")
AUDIT_PAGE = 50


@bp.before_request
@login_required
def _admins_only() -> None:
    """Every page here is for admins; a signed-in author gets a 403."""
    admin_required()


# -- the queue --------------------------------------------------------------------------------


@bp.get("/")
def queue() -> Response:
    """List drafts waiting for review, oldest submission first, filterable as you type."""
    q = request.args.get("q", "").strip()[:200]
    submitted = (
        select(ReviewEvent.article_id, func.max(ReviewEvent.created_at).label("at"))
        .where(ReviewEvent.action == "submit")
        .group_by(ReviewEvent.article_id)
        .subquery()
    )
    query = (
        select(Article, submitted.c.at)
        .outerjoin(submitted, submitted.c.article_id == Article.id)
        .where(Article.status == Status.IN_REVIEW)
        .order_by(func.coalesce(submitted.c.at, Article.updated_at), Article.id)
    )
    if q:
        query = query.join(User, User.id == Article.author_id).where(
            or_(
                Article.title.icontains(q, autoescape=True),
                User.name.icontains(q, autoescape=True),
                Article.ai_model.icontains(q, autoescape=True),
            )
        )
    rows = db.session.execute(query.limit(200)).unique().all()
    newest = latest_revisions([article.id for article, _at in rows])  # one query, not 200
    from .checks import queue_flags  # computed once per revision and stored: see its docstring

    flags = queue_flags(list(newest.values()), quick_flags)
    now = utcnow()
    items = []
    for article, submitted_at in rows:
        revision = newest.get(article.id)
        if revision is None:
            continue
        items.append(
            {
                "article": article,
                "revision": revision,
                "submitted_at": submitted_at,
                "age": _age(
                    now - (submitted_at.replace(tzinfo=UTC) if submitted_at else article.updated_at)
                ),
                "words": len(revision.body.split()),
                "flags": flags[revision.id],
            }
        )
    return render_page("review/queue.html", "queue", items=items, q=q)


def _age(delta) -> str:  # noqa: ANN001 - a timedelta
    """Say how long ago, roughly: 5 min, 3 h, 2 days."""
    minutes = int(delta.total_seconds() // 60)
    if minutes < 60:
        return f"{max(minutes, 0)} min"
    if minutes < 48 * 60:
        return f"{minutes // 60} h"
    return f"{minutes // (24 * 60)} days"


# -- the review page --------------------------------------------------------------------------


def _article_or_404(article_id: int) -> Article:
    article = db.session.get(Article, article_id)
    if article is None:
        abort(404)
    return article


@bp.get("/<int:article_id>")
def draft(article_id: int) -> str:
    """Show a draft as readers will see it, its diffs, the checks, comments and the decisions."""
    article = _article_or_404(article_id)
    revision = latest_revision(article)
    if revision is None:
        abort(404)
    original = ai_original(article)
    approved = (
        db.session.get(Revision, article.published_revision_id)
        if (article.published_revision_id)
        else None
    )
    return render_template(
        "review/draft.html",
        article=article,
        revision=revision,
        ai_share=ai_share(article, revision) if original else None,
        rendered=render(revision.body),
        original=original,
        original_diff=diff_texts(original.body, revision.body) if original else None,
        approved=approved,
        approved_diff=diff_texts(approved.body, revision.body)
        if approved and approved.id != revision.id
        else None,
        checks=run_checks(revision, article.id),
        events=history(article),
        actions=allowed_actions(current_user, article),
        now=utcnow(),
    )


@bp.post("/<int:article_id>/decide")
def decide(article_id: int) -> Response:
    """Record a decision (or a comment); when another admin decided first, say so."""
    article = _article_or_404(article_id)
    action = request.form.get("action", "")
    comment = request.form.get("comment", "")[:10_000]
    back = redirect(url_for("review.draft", article_id=article.id))
    if action == "comment":
        if not comment.strip():
            flash("Write a comment first.", "error")
            return back
        revision = latest_revision(article)
        db.session.add(
            ReviewEvent(
                article_id=article.id,
                revision_id=revision.id if revision else None,
                actor=current_user,
                action="comment",
                comment=comment.strip(),
            )
        )
        record("comment", current_user, f"commented on {article.slug}")
        db.session.commit()
        flash("Comment added; the author sees it in the studio.", "info")
        return back
    if action not in DECISIONS:
        flash("Choose one of the decisions.", "error")
        return back
    publish_at = None
    if action == "schedule":
        publish_at = _parse_publish_at(request.form.get("publish_at", ""))
        if publish_at is None:
            flash("Give the date and time to publish at, e.g. 2026-12-01 09:00 (UTC).", "error")
            return back
    try:
        transition(
            article,
            action,
            current_user,
            comment=comment,
            publish_at=publish_at,
            expected_version=_form_number("version"),
            revision_number=_form_number("revision"),
        )
    except TransitionError as error:
        flash(str(error), "error")
        return back
    db.session.commit()
    messages = {
        "approve": "Approved and published.",
        "schedule": f"Approved; it will be published on {publish_at:%d %b %Y at %H:%M} UTC."
        if publish_at
        else "",
        "request_changes": "Changes requested; the author sees your comment in the studio.",
        "reject": "Rejected.",
    }
    flash(messages[action], "info")
    return redirect(url_for("review.queue"))


def _form_number(name: str) -> int | None:
    """Read a hidden number the review page sent back (None when missing or not a number)."""
    value = request.form.get(name, "")
    return int(value) if value.isdigit() and len(value) < 12 else None


@bp.post("/<int:article_id>/take-down", endpoint="take_down")
def unpublish(article_id: int) -> Response:
    """Unpublish an article with a reason; it answers 410 until it is approved again."""
    article = _article_or_404(article_id)
    try:
        take_down(article, current_user, request.form.get("reason", "")[:2000])
    except TransitionError as error:
        flash(str(error), "error")
        return redirect(url_for("review.draft", article_id=article.id))
    db.session.commit()
    flash("Taken down. Its address now answers “gone”; re-approve it to bring it back.", "info")
    return redirect(url_for("review.draft", article_id=article.id))


def _parse_publish_at(value: str) -> datetime | None:
    """Read a datetime-local value (or "YYYY-MM-DD HH:MM") as UTC."""
    try:
        parsed = datetime.fromisoformat(value.strip().replace(" ", "T"))
    except ValueError:
        return None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


# -- users, tokens, audit log -----------------------------------------------------------------


@bp.route("/users", methods=["GET", "POST"])
def users() -> Response | str:
    """List accounts; create one, change a role, deactivate or reactivate."""
    if request.method == "POST":
        return _change_user()
    listed = db.session.scalars(select(User).order_by(User.name)).all()
    return render_template("review/users.html", users=listed, roles=[r.value for r in Role])


def _change_user() -> Response:
    form = request.form
    back = redirect(url_for("review.users"))
    if form.get("op") == "create":
        email = form.get("email", "").strip().lower()
        name = form.get("name", "").strip()
        password = form.get("password", "")
        role = form.get("role", Role.AUTHOR)
        if "@" not in email or not name or len(password) < 8 or role not in set(Role):
            flash(
                "Give an e-mail, a name, a role and a password of at least 8 characters.", "error"
            )
            return back
        if db.session.scalar(select(User).filter_by(email=email)):
            flash(f"{email} already has an account.", "error")
            return back
        user = User(email=email, name=name, role=role)
        user.set_password(password)
        db.session.add(user)
        record("user_created", current_user, f"{email} created as {role}")
        db.session.commit()
        flash(f"Created {role} {email}.", "info")
        return back
    user = db.session.get(User, form.get("user_id", type=int) or 0)
    if user is None:
        abort(404)
    if user.id == current_user.id:
        flash("You cannot change your own role or deactivate yourself here.", "error")
        return back
    op = form.get("op")
    if op == "role" and form.get("role") in set(Role):
        user.role = form["role"]
        user.rotate_session_token()  # a new role takes effect at the next sign-in
        record("user_role", current_user, f"{user.email} is now {user.role}")
    elif op == "deactivate":
        user.active = False
        user.rotate_session_token()
        record("user_deactivated", current_user, f"{user.email} deactivated")
    elif op == "activate":
        user.active = True
        record("user_activated", current_user, f"{user.email} reactivated")
    else:
        flash("Unknown change.", "error")
        return back
    db.session.commit()
    flash(f"Updated {user.email}.", "info")
    return back


@bp.route("/tokens", methods=["GET", "POST"])
def tokens() -> Response | str:
    """List API tokens with their last use; create one (shown once) or revoke one."""
    new_secret = None
    if request.method == "POST":
        op = request.form.get("op")
        if op == "create":
            owner = db.session.get(User, request.form.get("user_id", type=int) or 0)
            if owner is None or not owner.active:
                flash("Choose an active account for the token.", "error")
                return redirect(url_for("review.tokens"))
            token, new_secret = create_token(owner, request.form.get("name", ""))
            record("token_created", current_user, f"token {token.prefix}… for {owner.email}")
            db.session.commit()
        elif op == "revoke":
            token = db.session.get(ApiToken, request.form.get("token_id", type=int) or 0)
            if token is None:
                abort(404)
            if token.revoked_at is None:
                token.revoked_at = utcnow()
                record("token_revoked", current_user, f"token {token.prefix}… revoked")
                db.session.commit()
            flash(f"Token {token.prefix}… revoked.", "info")
            return redirect(url_for("review.tokens"))
    listed = db.session.scalars(select(ApiToken).order_by(ApiToken.created_at.desc())).all()
    owners = db.session.scalars(select(User).where(User.active.is_(True)).order_by(User.name)).all()
    return render_template(
        "review/tokens.html", tokens=listed, owners=owners, new_secret=new_secret
    )


@bp.get("/audit")
def audit() -> str:
    """Show the audit log, newest first: decisions, sign-ins, token use, account changes."""
    # Clamped: SQLite cannot bind an offset past 2**63 (an OverflowError, once a 500).
    page = clamped_int(request.args.get("page"), 1, 1, MAX_PAGE)
    action = request.args.get("action", "")
    query = select(AuditEntry).order_by(AuditEntry.created_at.desc(), AuditEntry.id.desc())
    if action:
        query = query.where(AuditEntry.action == action)
    entries = db.session.scalars(query.limit(AUDIT_PAGE + 1).offset((page - 1) * AUDIT_PAGE)).all()
    actions = db.session.scalars(select(AuditEntry.action).distinct().order_by(AuditEntry.action))
    return render_template(
        "review/audit.html",
        entries=entries[:AUDIT_PAGE],
        page=page,
        more=len(entries) > AUDIT_PAGE,
        action=action,
        actions=list(actions),
    )
