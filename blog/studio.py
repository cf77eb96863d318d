"""The studio: an author's articles, the editor with live preview and autosave, revisions.

Nothing an author saves is lost. Every save is a Revision (autosaves fold into one per editing
session), a save never overwrites a newer version someone else saved (that is a 409 and a page to
resolve it), and restoring an old revision writes a new one.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    flash,
    make_response,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_login import current_user, login_required
from sqlalchemy import ColumnElement, or_, select, true

from . import clock
from .articles import (
    TAGS_FIELD_MAX,
    Draft,
    add_revision,
    ai_original,
    conflicting_revision,
    create_article,
    draft_from,
    latest_revision,
    latest_revisions,
    save_draft,
    split_tags,
)
from .content import MAX_BODY_CHARS, render
from .diff import changed_fields, diff_texts
from .extensions import db, limiter
from .htmx import render_page
from .models import Article, Category, Revision, Status, Tag
from .params import SQLITE_INT_MAX, bounded_int
from .search import category_is_public, category_used, tag_is_public, tag_used
from .workflow import (
    TransitionError,
    after_edit,
    allowed_actions,
    can_edit,
    history,
    revision_by_number,
    transition,
)

bp = Blueprint("studio", __name__, url_prefix="/studio")

FILTERABLE_STATUSES = [s.value for s in Status]
# What an autosave calls a draft whose author has not typed a title yet; the title field stays
# empty in the editor, so the author's first title replaces it.
PROVISIONAL_TITLE = "Untitled draft"
# Editing these starts a new draft that readers do not see until a reviewer approves it.
LIVE_STATUSES = (Status.PUBLISHED, Status.SCHEDULED)


@bp.before_request
@login_required
def _signed_in() -> None:
    """Every studio page needs a signed-in author or admin."""


def _article_or_404(article_id: int) -> Article:
    """Load an article the current user may edit; anyone else's is a 404, never a 403."""
    article = db.session.get(Article, article_id)
    if article is None or not can_edit(current_user, article):
        abort(404)
    return article


# -- the list ---------------------------------------------------------------------------------


@bp.get("/")
def index() -> Response:
    """List the user's articles (an admin's: everyone's), newest change first, filterable."""
    q = request.args.get("q", "").strip()[:200]
    status = request.args.get("status", "")
    query = select(Article).order_by(Article.updated_at.desc(), Article.id.desc())
    if not current_user.is_admin:
        query = query.where(Article.author_id == current_user.id)
    if q:
        query = query.where(
            or_(
                Article.title.icontains(q, autoescape=True),
                Article.slug.icontains(q, autoescape=True),
            )
        )
    if status in FILTERABLE_STATUSES:
        query = query.where(Article.status == status)
    articles = db.session.scalars(query.limit(500)).unique().all()
    latest = latest_revisions([a.id for a in articles])
    return render_page(
        "studio/index.html",
        "articles",
        articles=articles,
        latest=latest,
        q=q,
        status=status if status in FILTERABLE_STATUSES else "",
        statuses=FILTERABLE_STATUSES,
    )


def _per_person() -> str:
    """Key the studio's rate limits by account (the address when nobody is signed in)."""
    if current_user.is_authenticated:
        return f"person:{current_user.id}"
    return f"address:{request.remote_addr}"


def _limit(name: str, default: str) -> Callable[[], str]:
    """Read a rate limit from the configuration when a request is checked."""
    return lambda: current_app.config.get(name, default)


# -- the editor -------------------------------------------------------------------------------


@dataclass
class EditorForm:
    """What the editor form posted, plus what it needs to detect conflicts."""

    draft: Draft
    base_revision: int
    editing_session: str
    tags_typed: str = ""  # the tags field as sent, kept (and refused) when over TAGS_FIELD_MAX

    @classmethod
    def from_request(cls) -> EditorForm:
        form = request.form
        tags = form.get("tags", "")
        # No base (0) when absent, not a number or past the database's integers: the save is
        # then checked against every revision, so a conflict is shown, never written over.
        base = bounded_int(form.get("base_revision"), 0, 0, SQLITE_INT_MAX) or 0
        draft = Draft(
            title=form.get("title", "").strip(),
            body=form.get("body", "").replace("\r\n", "\n"),
            summary=form.get("summary", "").strip(),
            category=form.get("category", "").strip(),
            tags=split_tags(tags) if len(tags) <= TAGS_FIELD_MAX else [],
            slug=form.get("slug", "").strip().lower(),
            ai_generated=form.get("ai_generated") == "1",
            ai_model=form.get("ai_model", "").strip()[:120],
        )
        return cls(
            draft=draft,
            base_revision=base,
            editing_session=form.get("editing_session", "")[:64] or secrets.token_hex(8),
            tags_typed=tags if len(tags) > TAGS_FIELD_MAX else "",
        )

    def problems(self, article: Article | None) -> dict[str, str]:
        """Check the fields, including that an explicit slug is not another article's."""
        found = self.draft.problems()
        if self.tags_typed:
            found["tags"] = f"The tags are longer than {TAGS_FIELD_MAX:,} characters."
        if not self.draft.body.strip():
            found.pop("body", None)  # a draft may be empty; submitting checks there is text
        if self.draft.slug and "slug" not in found:
            owner = db.session.scalar(select(Article.id).filter_by(slug=self.draft.slug))
            if owner is not None and (article is None or owner != article.id):
                found["slug"] = "Another article already uses this slug."
        return found


def _known_to_writer(model: type[Category] | type[Tag]) -> ColumnElement[bool]:
    """Say in SQL which categories or tags the editor may suggest to the person writing.

    An admin reads every draft anyway; an author gets the public ones and those of their own
    articles, never a name only another author's draft uses (their unreviewed words).
    """
    if current_user.is_admin:
        return true()
    own = Article.author_id == current_user.id
    if model is Category:
        return or_(category_is_public(), category_used(own))
    return or_(tag_is_public(), tag_used(own))


def _editor_context(article: Article | None, **extra: Any) -> dict[str, Any]:
    """Everything the editor template needs besides the form values."""
    context: dict[str, Any] = {
        "article": article,
        "categories": db.session.scalars(
            select(Category).where(_known_to_writer(Category)).order_by(Category.position)
        ).all(),
        "tag_names": db.session.scalars(
            select(Tag.name).where(_known_to_writer(Tag)).order_by(Tag.name)
        ).all(),
        "actions": allowed_actions(current_user, article) if article else [],
        "events": history(article) if article else [],
        "ai_locked": article is not None and ai_original(article) is not None,
        "errors": {},
    }
    context.update(extra)
    return context


def _values_from_revision(revision: Revision | None, article: Article | None) -> dict[str, Any]:
    if revision is None:
        return {
            "title": "",
            "slug": "",
            "summary": "",
            "category": "",
            "tags": "",
            "body": "",
            "ai_generated": False,
            "ai_model": "",
        }
    return {
        "title": revision.title,
        "slug": article.slug if article else "",
        "summary": revision.summary,
        "category": revision.category_name,
        "tags": revision.tags,
        "body": revision.body,
        "ai_generated": revision.ai_generated,
        "ai_model": revision.ai_model or "",
    }


def _values_from_form(form: EditorForm) -> dict[str, Any]:
    draft = form.draft
    return {
        "title": draft.title,
        "slug": draft.slug,
        "summary": draft.summary,
        "category": draft.category,
        "tags": form.tags_typed or ", ".join(draft.tags),
        "body": draft.body,
        "ai_generated": draft.ai_generated,
        "ai_model": draft.ai_model,
    }


def _render_editor(
    article: Article | None, values: dict[str, Any], base: int, status: int = 200, **extra: Any
) -> Response:
    context = _editor_context(article, **extra)
    newest = latest_revision(article) if article else None
    html = render_template(
        "studio/editor.html",
        values=values,
        base_revision=base,
        editing_session=secrets.token_hex(8),
        preview=render(values["body"]),
        header=_preview_header(values),
        saved_at=newest.created_at if newest else None,
        live=article is not None and article.status in LIVE_STATUSES,
        **context,
    )
    return make_response(html, status)


def _preview_header(values: dict[str, Any]) -> dict[str, Any]:
    """The article header as readers will see it, from the editor's fields."""
    return {
        "title": values.get("title", "").strip(),
        "summary": values.get("summary", "").strip(),
        "category": values.get("category", "").strip(),
        "tags": split_tags(values.get("tags", "")),
        "ai_generated": bool(values.get("ai_generated")),
        "ai_model": values.get("ai_model", ""),
    }


@bp.get("/new")
def new() -> Response:
    """Open an empty editor."""
    return _render_editor(None, _values_from_revision(None, None), 0)


def _is_autosave() -> bool:
    """Say whether this POST to /studio/new is the editor's quiet autosave (?autosave=1)."""
    return request.args.get("autosave") == "1"


@bp.post("/new")
@limiter.limit(
    _limit("AUTOSAVE_RATE_LIMIT", "30 per minute"),
    key_func=_per_person,
    exempt_when=lambda: not _is_autosave(),
)
def create() -> Response:
    """Create an article from the editor's first save, or quietly from its first keystrokes.

    An autosave (?autosave=1) needs no title yet: the draft gets a provisional one, and the answer
    tells the page where the new article lives so it goes on editing it without a reload.
    """
    form = EditorForm.from_request()
    quiet = _is_autosave()
    started = _started_by(form.editing_session)
    if started is not None:
        # This editing session already created its article (an autosave whose answer was lost,
        # or a page whose script never switched over): save there, never create a second one.
        return _autosave_into(started, form) if quiet else _save_into(started, form)
    if quiet and not form.draft.title:
        form.draft = replace(form.draft, title=PROVISIONAL_TITLE)
    problems = form.problems(None)
    if problems and quiet:
        return _autosave_answer("Not autosaved: " + " ".join(problems.values()), ok=False)
    if problems:
        return _render_editor(None, _values_from_form(form), 0, 422, errors=problems)
    # An autosaved first revision folds the session's next autosaves into itself, like any other.
    article, revision = create_article(
        form.draft, current_user, kind="autosave" if quiet else "edit"
    )
    revision.editing_session = form.editing_session
    db.session.commit()
    if quiet:
        response = _autosave_answer("Autosaved at", ok=True, created=article)
        response.headers["HX-Replace-Url"] = url_for("studio.edit", article_id=article.id)
        return response
    return _after_save(article, "Draft saved.")


def _started_by(editing_session: str) -> Article | None:
    """Find the article this user's editing session created already, if any."""
    found = db.session.scalar(
        select(Revision.article_id)
        .where(
            Revision.editing_session == editing_session,
            Revision.created_by_id == current_user.id,
        )
        .limit(1)
    )
    return _article_or_404(found) if found is not None else None


@bp.get("/<int:article_id>/edit")
def edit(article_id: int) -> Response:
    """Open the editor on the newest revision."""
    article = _article_or_404(article_id)
    revision = latest_revision(article)
    return _render_editor(
        article, _values_from_revision(revision, article), revision.number if revision else 0
    )


@bp.post("/<int:article_id>/edit")
def save(article_id: int) -> Response:
    """Save a revision; a save over someone else's newer revision is a conflict, not a loss."""
    return _save_into(_article_or_404(article_id), EditorForm.from_request())


def _save_into(article: Article, form: EditorForm) -> Response:
    """Save the form as a revision of `article`, or answer with the problems or the conflict."""
    problems = form.problems(article)
    if problems:
        return _render_editor(
            article, _values_from_form(form), form.base_revision, 422, errors=problems
        )
    newer = conflicting_revision(article, form.base_revision, form.editing_session)
    if newer is not None:
        return _conflict(article, form, newer)
    saved = _write(article, form, autosave=False)
    db.session.commit()
    if request.form.get("action") == "submit":
        try:
            transition(article, "submit", current_user)
        except TransitionError as error:
            flash(str(error), "error")
            return redirect(url_for("studio.edit", article_id=article.id))
        db.session.commit()
        return _after_save(article, "Saved and submitted for review.")
    return _after_save(article, "Saved." if saved else "No changes to save.")


def _after_save(article: Article, message: str) -> Response:
    flash(message, "info")
    return redirect(url_for("studio.edit", article_id=article.id))


@bp.post("/<int:article_id>/autosave")
@limiter.limit(_limit("AUTOSAVE_RATE_LIMIT", "30 per minute"), key_func=_per_person)
def autosave(article_id: int) -> Response:
    """Save the editor's text quietly (htmx); folds into one revision per editing session."""
    return _autosave_into(_article_or_404(article_id), EditorForm.from_request())


def _autosave_into(article: Article, form: EditorForm) -> Response:
    """Autosave the form into `article`; a newer version from elsewhere is a 409 that says whose."""
    if not form.draft.title:  # a cleared title keeps the saved one until the author types anew
        form.draft = replace(form.draft, title=article.title or PROVISIONAL_TITLE)
    problems = form.problems(article)
    if problems:
        return _autosave_answer("Not autosaved: " + " ".join(problems.values()), ok=False)
    newer = conflicting_revision(article, form.base_revision, form.editing_session)
    if newer is not None:
        message = f"Not autosaved: {_who_saved(newer)} saved a newer version. Save to compare."
        response = _autosave_answer(message, ok=False)
        response.status_code = 409
        return response
    _write(article, form, autosave=True)
    db.session.commit()
    return _autosave_answer("Autosaved at", ok=True)


def _autosave_answer(message: str, *, ok: bool, created: Article | None = None) -> Response:
    """The save-state fragment; a kept save also tells the checks panel to look again."""
    html = render_template(
        "studio/_autosave.html",
        message=message,
        ok=ok,
        saved_at=clock.now() if ok else None,
        created=created,
    )
    response = make_response(html)
    if ok:
        response.headers["HX-Trigger"] = "saved"
    response.headers["Cache-Control"] = "no-store"
    return response


def _who_saved(revision: Revision) -> str:
    """Name who saved a revision as the reader of the page knows them: "you" for oneself."""
    if revision.created_by_id == current_user.id:
        return "You (in another tab or window)"
    return revision.created_by.name


def _write(article: Article, form: EditorForm, *, autosave: bool) -> bool:
    """Save the form through the domain layer; an edit of a published article reopens it."""
    saved = save_draft(
        article,
        form.draft,
        current_user,
        editing_session=form.editing_session,
        autosave=autosave,
    )
    if saved:
        after_edit(article)
    return saved


def _conflict(article: Article, form: EditorForm, newer: Revision) -> Response:
    """Show both versions and the ways out, with a 409; the user's text is kept in the form."""
    theirs = newer.body
    html = render_template(
        "studio/conflict.html",
        article=article,
        newer=newer,
        yours_too=newer.created_by_id == current_user.id,
        values=_values_from_form(form),
        body_diff=diff_texts(theirs, form.draft.body),
        base_revision=newer.number,
        editing_session=secrets.token_hex(8),
        fields_differ=[
            (label, getattr(newer, attr), value)
            for label, attr, value in (
                ("Title", "title", form.draft.title),
                ("Summary", "summary", form.draft.summary),
                ("Category", "category_name", form.draft.category),
                ("Tags", "tags", ", ".join(form.draft.tags)),
            )
            if getattr(newer, attr) != value
        ],
    )
    return make_response(html, 409)


@bp.post("/preview")
@limiter.limit(_limit("PREVIEW_RATE_LIMIT", "60 per minute"), key_func=_per_person)
def preview() -> Response:
    """Render the editor's Markdown exactly as the public page will (htmx, debounced)."""
    body = request.form.get("body", "")[:MAX_BODY_CHARS]
    values = {name: request.form.get(name, "")[:1000] for name in ("title", "summary", "category")}
    values.update(
        tags=request.form.get("tags", "")[:2000],
        ai_generated=request.form.get("ai_generated") == "1",
        ai_model=request.form.get("ai_model", "")[:120],
    )
    return make_response(
        render_template(
            "studio/_preview.html", preview=render(body), header=_preview_header(values)
        )
    )


# -- decisions an author makes ----------------------------------------------------------------


@bp.post("/<int:article_id>/<any(submit, withdraw):action>")
def decide(article_id: int, action: str) -> Response:
    """Submit an article for review, or withdraw the submission."""
    article = _article_or_404(article_id)
    try:
        transition(article, action, current_user)
    except TransitionError as error:
        flash(str(error), "error")
    else:
        db.session.commit()
        flash("Submitted for review." if action == "submit" else "Submission withdrawn.", "info")
    return redirect(url_for("studio.edit", article_id=article.id))


# -- revisions --------------------------------------------------------------------------------


@bp.get("/<int:article_id>/history")
def revisions(article_id: int) -> str:
    """List every revision with who saved it and when, and pick two to compare."""
    article = _article_or_404(article_id)
    listed = db.session.scalars(
        select(Revision).where(Revision.article_id == article.id).order_by(Revision.number.desc())
    ).all()
    return render_template(
        "studio/history.html", article=article, revisions=listed, events=history(article)
    )


@bp.get("/<int:article_id>/diff")
def compare(article_id: int) -> str:
    """Compare two revisions (defaults: the previous one and the newest)."""
    article = _article_or_404(article_id)
    newest = latest_revision(article)
    if newest is None:
        abort(404)
    # A number that is not one is the default; one no revision can have (0, -1, 10**22) is a 404.
    new_number = bounded_int(request.args.get("b"), newest.number, 1, SQLITE_INT_MAX)
    if new_number is None:
        abort(404)
    old_number = bounded_int(request.args.get("a"), max(1, new_number - 1), 1, SQLITE_INT_MAX)
    if old_number is None:
        abort(404)
    old = revision_by_number(article, old_number)
    new = revision_by_number(article, new_number)
    if old is None or new is None:
        abort(404)
    return render_template(
        "studio/diff.html",
        article=article,
        old=old,
        new=new,
        body_diff=diff_texts(old.body, new.body),
        field_changes=changed_fields(old, new),
        numbers=[r.number for r in article.revisions],
    )


@bp.post("/<int:article_id>/revisions/<int:number>/restore")
def restore(article_id: int, number: int) -> Response:
    """Restore an old revision by writing it again as the newest one."""
    article = _article_or_404(article_id)
    old = revision_by_number(article, number)
    if old is None:
        abort(404)
    draft = draft_from(old)
    add_revision(article, draft, current_user, kind="restore", note=f"restored revision {number}")
    after_edit(article)
    db.session.commit()
    flash(f"Revision {number} restored as a new revision.", "info")
    return redirect(url_for("studio.edit", article_id=article.id))


# -- the checks panel -------------------------------------------------------------------------


@bp.get("/<int:article_id>/checks")
def checks(article_id: int) -> Response:
    """Run the review checks on the newest saved revision (htmx fragment for the editor's panel).

    The same checks the reviewer sees, so an author finds a dead link before submitting; with
    the article in review it also says what the next save does (workflow.review_notice).
    """
    from .checks import run_checks
    from .workflow import review_notice

    article = _article_or_404(article_id)
    revision = latest_revision(article)
    if revision is None:
        abort(404)
    html = render_template(
        "review/_checks.html",
        checks=run_checks(revision, article.id),
        notice=review_notice(article),
        checked_revision=revision,
    )
    response = make_response(html)
    response.headers["Cache-Control"] = "no-store"
    return response
