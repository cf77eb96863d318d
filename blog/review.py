"""The admin's side: the review queue, the review page and decisions; users, tokens, audit log."""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from flask import (
    Blueprint,
    Response,
    abort,
    flash,
    make_response,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_login import current_user, login_required
from markupsafe import Markup
from sqlalchemy import func, or_, select

from . import clock
from .account import reset_link
from .api import create_token
from .articles import (
    ai_original,
    ai_share,
    conflicting_revision,
    draft_from,
    latest_revision,
    latest_revisions,
    save_draft,
)
from .audit import record
from .auth import admin_required
from .checks import queue_flags, quick_flags, run_checks
from .content import render
from .diff import changed_fields, diff_texts
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
)
from .params import MAX_PAGE, SQLITE_INT_MAX, bounded_int, clamped_int
from .workflow import (
    StaleRevision,
    TransitionError,
    after_edit,
    allowed_actions,
    edited_in_review,
    history,
    revision_by_number,
    take_down,
    transition,
)

bp = Blueprint("review", __name__, url_prefix="/review")

DECISIONS = ("approve", "schedule", "request_changes", "reject")
AUDIT_PAGE = 50


@bp.before_request
@login_required
def _admins_only() -> None:
    """Every page here is for admins; a signed-in author gets a 403."""
    admin_required()


# -- the queue --------------------------------------------------------------------------------

# The queue's two tabs: drafts waiting for a reviewer, and drafts waiting on their author.
QUEUE_TABS = {"review": Status.IN_REVIEW, "author": Status.CHANGES_REQUESTED}


@bp.get("/")
def queue() -> Response:
    """List drafts waiting for review (or on their author), oldest first, filterable as you type."""
    q = request.args.get("q", "").strip()[:200]
    tab = request.args.get("tab", "review")
    if tab not in QUEUE_TABS:
        tab = "review"
    # The age counts from the move that put the draft in this tab: a submission, or a request.
    started_by = "submit" if tab == "review" else "request_changes"
    moved = (
        select(ReviewEvent.article_id, func.max(ReviewEvent.created_at).label("at"))
        .where(ReviewEvent.action == started_by)
        .group_by(ReviewEvent.article_id)
        .subquery()
    )
    query = (
        select(Article, moved.c.at)
        .outerjoin(moved, moved.c.article_id == Article.id)
        .where(Article.status == QUEUE_TABS[tab])
        .order_by(func.coalesce(moved.c.at, Article.updated_at), Article.id)
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
    flags = queue_flags(list(newest.values()), quick_flags)
    now = clock.now()
    items = []
    for article, since in rows:
        revision = newest.get(article.id)
        if revision is None:
            continue
        items.append(
            {
                "article": article,
                "revision": revision,
                "submitted_at": since,
                "age": _age(now - (since.replace(tzinfo=UTC) if since else article.updated_at)),
                "words": len(revision.body.split()),
                "flags": flags[revision.id],
            }
        )
    counts = dict(
        db.session.execute(
            select(Article.status, func.count())
            .where(Article.status.in_(list(QUEUE_TABS.values())))
            .group_by(Article.status)
        ).all()
    )
    return render_page(
        "review/queue.html",
        "queue",
        items=items,
        q=q,
        tab=tab,
        counts={name: counts.get(status, 0) for name, status in QUEUE_TABS.items()},
    )


def _age(delta) -> str:  # noqa: ANN001 - a timedelta
    """Say how long ago, roughly: under a minute, 5 min, 3 h, 2 days."""
    minutes = int(delta.total_seconds() // 60)
    if minutes < 1:
        return "under a minute"
    if minutes < 60:
        return f"{minutes} min"
    if minutes < 48 * 60:
        return f"{minutes // 60} h"
    return f"{minutes // (24 * 60)} days"


# -- the review page --------------------------------------------------------------------------


def _article_or_404(article_id: int) -> Article:
    """Load any article (admins may review all of them), or answer 404."""
    article = db.session.get(Article, article_id)
    if article is None:
        abort(404)
    return article


@dataclass
class DiffChoice:
    """One of the review page's diffs: a name for the address, what it is since, the older
    revision; `aliases` are the names of the others that had the same older revision."""

    key: str
    since: str
    old: Revision
    aliases: list[str] = field(default_factory=list)

    @property
    def label(self) -> str:
        return f"Since {self.since} (revision {self.old.number})"


def _last_event(article: Article, action: str) -> ReviewEvent | None:
    """Return the article's latest event of one kind (a request for changes, a take-down)."""
    return db.session.scalar(
        select(ReviewEvent)
        .where(ReviewEvent.article_id == article.id, ReviewEvent.action == action)
        .order_by(ReviewEvent.created_at.desc(), ReviewEvent.id.desc())
        .limit(1)
    )


def _diff_choices(article: Article, revision: Revision) -> list[DiffChoice]:
    """List the diffs that answer a reviewer's questions, most pressing first."""
    choices = []
    asked = _last_event(article, "request_changes")
    if asked is not None and asked.revision is not None and asked.revision.id != revision.id:
        who = "you" if asked.actor_id == current_user.id else asked.actor.name
        choices.append(DiffChoice("asked", f"{who} asked for changes", asked.revision))
    submitted = edited_in_review(article, revision)
    if submitted is not None:
        choices.append(DiffChoice("submitted", "submitted", submitted))
    if article.published_revision_id and article.published_revision_id != revision.id:
        approved = db.session.get(Revision, article.published_revision_id)
        if approved is not None:
            choices.append(DiffChoice("approved", "the last approved version", approved))
    elif article.taken_down_at is not None:  # what readers last saw is what was taken down
        taken = _last_event(article, "take_down")
        if taken is not None and taken.revision is not None and taken.revision.id != revision.id:
            choices.append(DiffChoice("taken_down", "the version taken down", taken.revision))
    original = ai_original(article)
    if original is not None and original.id != revision.id:
        choices.append(DiffChoice("original", "the AI's original", original))
    # Two answers from one older revision are one diff: a tab each would show it twice.
    merged: list[DiffChoice] = []
    for choice in choices:
        same = next((kept for kept in merged if kept.old.id == choice.old.id), None)
        if same is None:
            merged.append(choice)
        else:
            same.since += f", {choice.since}"
            same.aliases.append(choice.key)
    return merged


def _review_page(
    article: Article,
    *,
    comment: str = "",
    publish_at: str = "",
    read: int | None = None,
    edit_values: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    status: int | None = None,
) -> tuple[str, int]:
    """Render the review page; after a refused decision, with the reviewer's words kept.

    `read` is the revision the reviewer had read when the text changed under them: the page then
    shows the diff from it to the newest, and the form decides on the newest in one click.
    `errors` are the decision form's, by field (a 422 unless `status` says otherwise).
    """
    revision = latest_revision(article)
    if revision is None:
        abort(404)
    choices = _diff_choices(article, revision)
    wanted = request.args.get("diff", "")
    named = (c for c in choices if wanted in (c.key, *c.aliases))
    chosen = next(named, choices[0] if choices else None)
    read_revision = revision_by_number(article, read) if read else None
    submitted = edited_in_review(article, revision)
    return render_template(
        "review/draft.html",
        article=article,
        revision=revision,
        ai_share=ai_share(article, revision) if ai_original(article) else None,
        rendered=render(revision.body),
        choices=choices,
        chosen=chosen,
        chosen_diff=diff_texts(chosen.old.body, revision.body) if chosen else None,
        chosen_fields=changed_fields(chosen.old, revision) if chosen else [],
        read_revision=read_revision if read_revision and read_revision.id != revision.id else None,
        read_diff=diff_texts(read_revision.body, revision.body) if read_revision else None,
        read_fields=changed_fields(read_revision, revision) if read_revision else [],
        edited_after=submitted,
        checks=run_checks(revision, article.id),
        events=history(article),
        actions=[a for a in allowed_actions(current_user, article) if a in DECISIONS],
        comment=comment,
        publish_at=publish_at,
        errors=errors or {},
        edit_values=edit_values or _edit_values(revision),
        editing_session=secrets.token_hex(8),
        now=clock.now(),
        age=lambda at: _age(clock.now() - at),
    ), status or (422 if errors else 200)


@bp.get("/<int:article_id>")
def draft(article_id: int) -> tuple[str, int]:
    """Show a draft: checks and decision first, then the diffs, then the text as readers see it."""
    return _review_page(_article_or_404(article_id))


@bp.post("/<int:article_id>/decide")
def decide(article_id: int) -> Response | tuple[str, int]:
    """Record a decision (or a comment); when it cannot be made, keep every word typed."""
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
        return _review_page(article, comment=comment, status=422)
    publish_at, zone = None, None
    typed_at = request.form.get("publish_at", "")[:100]
    if action == "schedule":
        publish_at, zone = _parse_publish_at(typed_at, request.form.get("timezone", "UTC"))
        if publish_at is None:
            unreadable = "Give the date and time to publish at (e.g. 2026-12-01 09:00)."
            errors = {"publish_at": unreadable}
            return _review_page(article, comment=comment, publish_at=typed_at, errors=errors)
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
    except StaleRevision as error:
        db.session.rollback()
        flash(str(error), "error")
        return _review_page(article, comment=comment, read=error.read, status=409)
    except TransitionError as error:
        db.session.rollback()
        if error.field is not None:  # said by the field, which gets the focus
            errors = {error.field: str(error)}
            return _review_page(article, comment=comment, publish_at=typed_at, errors=errors)
        flash(str(error), "error")
        status = 409 if str(error).startswith("Not done") else 422
        return _review_page(article, comment=comment, publish_at=typed_at, status=status)
    db.session.commit()
    flash(_decision_message(article, action, publish_at, zone), "info")
    return redirect(url_for("review.queue"))


def _decision_message(
    article: Article, action: str, publish_at: datetime | None, zone: ZoneInfo | None
) -> str | Markup:
    """Say what the decision did; an approval links to the live article."""
    if action == "approve":
        return Markup('Approved and published. <a href="{}">Read “{}” on the site</a>.').format(
            url_for("public.article", slug=article.slug), article.title
        )
    if action == "schedule" and publish_at and zone:
        local = publish_at.astimezone(zone)
        said = f"Approved; it will be published on {local:%d %b %Y at %H:%M} ({zone.key})"
        if local.utcoffset():  # the same moment in UTC, the time the site keeps
            said += f", {publish_at:%d %b %Y %H:%M} UTC"
        return said + "."
    return {
        "request_changes": "Changes requested; the author sees your comment in the studio.",
        "reject": "Rejected.",
    }.get(action, "Done.")


def _form_number(name: str) -> int | None:
    """Read a number the review pages sent back (None when missing, not a number, or out of
    the database's range); params.py says why not int()."""
    return bounded_int(request.form.get(name), -1, 0, SQLITE_INT_MAX)


# -- editing in place -------------------------------------------------------------------------


def _edit_values(revision: Revision) -> dict[str, str]:
    """Return the fields the review page's editor shows, from a revision."""
    return {
        "title": revision.title,
        "summary": revision.summary,
        "body": revision.body,
        "base_revision": str(revision.number),
    }


@bp.post("/<int:article_id>/edit")
def edit(article_id: int) -> Response | tuple[str, int]:
    """Save an admin's fix as a new revision (theirs), and approve it at once if asked."""
    article = _article_or_404(article_id)
    form = request.form
    current = latest_revision(article)
    if current is None:
        abort(404)
    values = {
        "title": form.get("title", "").strip(),
        "summary": form.get("summary", "").strip(),
        "body": form.get("body", "").replace("\r\n", "\n"),
        "base_revision": form.get("base_revision", ""),
    }
    draft_text = draft_from(current)
    draft_text.title, draft_text.summary, draft_text.body = (
        values["title"],
        values["summary"],
        values["body"],
    )
    problems = draft_text.problems()
    if problems:
        flash("Not saved: " + " ".join(problems.values()), "error")
        return _review_page(article, edit_values=values, status=422)
    base = _form_number("base_revision") or 0
    session_key = form.get("editing_session", "")[:64] or secrets.token_hex(8)
    newer = conflicting_revision(article, base, session_key)  # locks the article until commit
    read_version = _form_number("version")
    if newer is None and read_version is not None and article.version != read_version:
        # Changed without a new number: an autosave folded into the revision being read (its
        # category, tags or model too, which draft_from would otherwise carry into the save).
        newer = latest_revision(article)
    if newer is not None:
        db.session.rollback()
        changed = "saved" if newer.number > base else "changed"
        flash(
            f"Not saved: {newer.created_by.name} {changed} revision {newer.number} while you "
            "read it. Your text is kept below; the page now shows theirs.",
            "error",
        )
        values["base_revision"] = str(newer.number)
        return _review_page(article, edit_values=values, read=base or None, status=409)
    saved = save_draft(
        article, draft_text, current_user, editing_session=session_key, autosave=False
    )
    if saved:
        after_edit(article)
    db.session.flush()
    # What "approve" must mean: this revision as of this version, the text the admin just sent
    # (or, unchanged, the one they read). Anything saved after this commit is someone else's.
    approving = latest_revision(article)
    number, version = (approving.number if approving else None), article.version
    db.session.commit()
    if form.get("action") != "approve":
        flash("Saved as a new revision; decide on it below." if saved else "No changes.", "info")
        return redirect(url_for("review.draft", article_id=article.id))
    try:
        transition(
            article, "approve", current_user, revision_number=number, expected_version=version
        )
    except TransitionError as error:
        db.session.rollback()
        flash(
            f"Saved as revision {number}, but not approved. {error}" if saved else str(error),
            "error",
        )
        return redirect(url_for("review.draft", article_id=article.id))
    db.session.commit()
    flash(_decision_message(article, "approve", None, None), "info")
    return redirect(url_for("review.queue"))


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


def _parse_publish_at(value: str, zone_name: str) -> tuple[datetime | None, ZoneInfo]:
    """Read a datetime-local value (or "YYYY-MM-DD HH:MM") in the admin's zone; return it in UTC."""
    try:
        zone = ZoneInfo(zone_name.strip() or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return None, ZoneInfo("UTC")
    try:
        parsed = datetime.fromisoformat(value.strip().replace(" ", "T"))
    except ValueError:
        return None, zone
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=zone)
    try:
        return parsed.astimezone(UTC), zone
    except OverflowError:  # 9999-12-31 23:59 in New York is past the calendar in UTC
        return None, zone


# -- users, tokens, audit log -----------------------------------------------------------------


@bp.route("/users", methods=["GET", "POST"])
def users() -> Response | str:
    """List accounts; invite one (a one-time link), change a role, deactivate or reactivate."""
    if request.method == "POST":
        return _change_user()
    return _users_page()


def _users_page(invited: User | None = None, invite_link: str | None = None) -> Response:
    """Render the accounts page; a new invitation's link is shown once, never stored or cached."""
    listed = db.session.scalars(select(User).order_by(User.name)).all()
    response = make_response(
        render_template(
            "review/users.html",
            users=listed,
            roles=[r.value for r in Role],
            invited=invited,
            invite_link=invite_link,
        )
    )
    response.headers["Cache-Control"] = "no-store"
    return response


def _change_user() -> Response:
    """Apply one change from the accounts page: an invitation, a role, (de)activation."""
    form = request.form
    back = redirect(url_for("review.users"))
    if form.get("op") == "create":
        email = form.get("email", "").strip().lower()
        name = form.get("name", "").strip()
        role = form.get("role", Role.AUTHOR)
        if "@" not in email or not name or role not in set(Role):
            flash("Give an e-mail, a name and a role.", "error")
            return back
        if db.session.scalar(select(User).filter_by(email=email)):
            flash(f"{email} already has an account.", "error")
            return back
        # Nobody types a password for someone else: the account starts with a random one nobody
        # knows, and the person chooses their own through a reset link (blog/account.py).
        user = User(email=email, name=name, role=role)
        user.set_password(secrets.token_urlsafe(32))
        db.session.add(user)
        db.session.flush()  # the link names the account by its id
        # Made before the commit: if it fails, the account goes with it (the error page rolls
        # back), rather than staying with no link to show and refusing a second invitation.
        link, _absolute = reset_link(user)
        record("user_created", current_user, f"{email} invited as {role}")
        db.session.commit()
        flash(f"Created {role} {email}.", "info")
        return _users_page(invited=user, invite_link=link)
    user = db.session.get(User, _form_number("user_id") or 0)
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
            owner = db.session.get(User, _form_number("user_id") or 0)
            if owner is None or not owner.active:
                flash("Choose an active account for the token.", "error")
                return redirect(url_for("review.tokens"))
            token, new_secret = create_token(owner, request.form.get("name", ""))
            record("token_created", current_user, f"token {token.prefix}… for {owner.email}")
            db.session.commit()
        elif op == "revoke":
            token = db.session.get(ApiToken, _form_number("token_id") or 0)
            if token is None:
                abort(404)
            if token.revoked_at is None:
                token.revoked_at = clock.now()
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
        articles=_audit_articles(entries[:AUDIT_PAGE]),
        entries=entries[:AUDIT_PAGE],
        page=page,
        more=len(entries) > AUDIT_PAGE,
        action=action,
        actions=list(actions),
    )


# Decisions and comments name their article by slug (workflow.transition, take_down, decide).
_AUDIT_SLUG = re.compile(r"^(?:[A-Z][^:]*: |commented on )([a-z0-9][a-z0-9-]*)")


def _audit_articles(entries: list[AuditEntry]) -> dict[int, Article]:
    """Map audit entries about an article to it (one query), so each row links to its title."""
    slugs = {}
    for entry in entries:
        found = _AUDIT_SLUG.match(entry.detail or "")
        if found:
            slugs[entry.id] = found.group(1)
    if not slugs:
        return {}
    by_slug = {
        article.slug: article
        for article in db.session.scalars(
            select(Article).where(Article.slug.in_(set(slugs.values())))
        ).unique()
    }
    return {entry_id: by_slug[slug] for entry_id, slug in slugs.items() if slug in by_slug}
