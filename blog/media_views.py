"""Media over HTTP: `/media/<file>` for readers, and uploading, listing and deleting in the studio.

The contract the editor's upload UI is built against:

- `POST /studio/<article_id>/media` (signed in, may edit the article; CSRF token in the form's
  `csrf_token` or the `X-CSRFToken` header; multipart `file`, optional `alt`) answers 201 with
  `{"id", "url", "width", "height", "markdown"}`, or a 4xx with `{"error": "..."}`: 413 too
  large, 415 not an image, 422 damaged or a decompression bomb, 429 too many uploads.
- `GET /studio/<article_id>/media` and `GET /studio/media` (every image: an admin's view; an
  author sees their own uploads) render `studio/media.html` with `media` (a list of MediaItem)
  and `article` (None for the site-wide list).
- `POST /studio/media/<media_id>/delete` deletes an image nobody uses; a used one is refused
  with a message naming where it is used.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime

from flask import (
    Blueprint,
    Flask,
    Response,
    abort,
    current_app,
    flash,
    jsonify,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_limiter import RateLimitExceeded
from flask_login import current_user, login_required
from flask_wtf.csrf import CSRFError
from sqlalchemy import func, or_, select
from sqlalchemy.orm import aliased, lazyload, load_only
from werkzeug.exceptions import RequestEntityTooLarge

from . import storage
from .articles import latest_revisions
from .auth import safe_next
from .database import in_chunks
from .extensions import csrf, db, limiter
from .media import (
    MediaError,
    delete_files,
    max_bytes,
    media_keys,
    picture_rows,
    process,
    save,
    variant_key,
)
from .models import Article, Media, Revision, RevisionImage
from .workflow import can_edit

bp = Blueprint("media", __name__)

# One person pastes a handful of screenshots a minute; a runaway script stops quickly.
UPLOAD_RATE_LIMIT = "30 per minute;300 per day"
# A multipart body carries a little more than the file: its headers and the other fields.
MULTIPART_OVERHEAD = 64 * 1024
IMMUTABLE = "public, max-age=31536000, immutable"
LIST_LIMIT = 500


def init_app(app: Flask) -> None:
    """Choose the storage, serve /media/ and the studio's media routes, add the og:image helper."""
    storage.configure(app)
    app.register_blueprint(bp)
    app.add_template_global(first_image_key)


# -- serving ----------------------------------------------------------------------------------


@bp.get("/media/<name>")
def file(name: str) -> Response:
    """Serve a stored image with caching for a year: its name is its content, it never changes."""
    try:
        key = storage.check_key(name)
    except storage.BadKey:
        abort(404)
    try:
        data = storage.media_storage().get(key)
    except storage.StorageUnavailable:
        current_app.logger.warning("media storage unavailable", exc_info=True)
        response = Response("This image cannot be read right now; try again soon.", 503)
        response.headers["Retry-After"] = "30"
        response.headers["Cache-Control"] = "no-store"
        return response
    if data is None:
        abort(404)
    response = Response(data, mimetype=storage.content_type(key))
    response.headers["Cache-Control"] = IMMUTABLE
    # Even a browser that sniffs, or a user who opens the file directly, gets an inert image.
    response.headers["Content-Security-Policy"] = "default-src 'none'; sandbox"
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Cross-Origin-Resource-Policy"] = "same-origin"
    response.set_etag(key.split(".")[0])
    return response.make_conditional(request)


# -- uploading --------------------------------------------------------------------------------


def _error(status: int, message: str) -> Response:
    """Answer the upload UI in its error shape: JSON with a message for the author."""
    response = jsonify(error=message)
    response.status_code = status
    return response


def _per_person() -> str:
    """Key the upload limit by account, as the studio's other write paths are."""
    if current_user.is_authenticated:
        return f"person:{current_user.id}"
    return f"address:{request.remote_addr}"


def _upload_limit() -> str:
    return current_app.config.get("MEDIA_UPLOAD_RATE_LIMIT") or UPLOAD_RATE_LIMIT


@bp.errorhandler(RateLimitExceeded)
def _too_many_uploads(error: RateLimitExceeded) -> Response:
    """Answer a breached upload limit as JSON the editor can show."""
    return _error(429, f"Too many uploads ({error.description}); try again in a minute.")


def upload_body_limit() -> int:
    """Return the largest request body an upload may send."""
    return max_bytes() + MULTIPART_OVERHEAD


def read_upload() -> bytes:
    """Read the multipart `file` field within the upload limit; raise MediaError otherwise."""
    limit = upload_body_limit()
    if request.content_length is not None and request.content_length > limit:
        raise MediaError(413, f"The file is larger than {max_bytes():,} bytes.")
    try:
        upload = request.files.get("file")
    except RequestEntityTooLarge:
        raise MediaError(413, f"The file is larger than {max_bytes():,} bytes.") from None
    if upload is None:
        raise MediaError(400, "Send the image in a multipart field named `file`.")
    data = upload.stream.read(max_bytes() + 1)
    if len(data) > max_bytes():
        raise MediaError(413, f"The file is larger than {max_bytes():,} bytes.")
    return data


def markdown_for(url: str, alt: str) -> str:
    """Return the Markdown that shows an image, its alt text made safe for the brackets."""
    cleaned = " ".join(alt.split())[:300]
    for special in ("\\", "[", "]"):
        cleaned = cleaned.replace(special, "\\" + special)
    return f"![{cleaned}]({url})"


@bp.post("/studio/<int:article_id>/media")
@csrf.exempt  # checked below, once the body limit for uploads is in place
@limiter.limit(_upload_limit, key_func=_per_person)
def upload(article_id: int) -> Response:
    """Store an image for an article and answer with its URL and the Markdown to insert."""
    if not current_user.is_authenticated:
        return _error(401, "Sign in to upload images.")
    article = db.session.get(Article, article_id)
    if article is None or not can_edit(current_user, article):
        return _error(404, "No such article.")
    # The site's body limit (2 MB) is for forms; an image may be larger.
    request.max_content_length = upload_body_limit()
    try:
        if current_app.config.get("WTF_CSRF_ENABLED", True):
            csrf.protect()
    except CSRFError as error:
        return _error(400, f"{error.description} Reload the page and try again.")
    except RequestEntityTooLarge:
        return _error(413, f"The file is larger than {max_bytes():,} bytes.")
    user_id = current_user.id
    try:
        data = read_upload()
        # No transaction stays open (and no write lock held) while Pillow decodes.
        db.session.commit()
        processed = process(data)
    except MediaError as error:
        return _error(error.status, error.message)
    try:
        media = save(processed, user_id, article_id)
    except storage.StorageUnavailable:
        db.session.rollback()
        current_app.logger.exception("an upload could not be stored")
        return _error(503, storage.UNAVAILABLE)
    db.session.commit()
    url = url_for("media.file", name=media.key)
    return _created(media, url, markdown=markdown_for(url, request.form.get("alt", "")))


def _created(media: Media, url: str, **extra: str) -> Response:
    response = jsonify(id=media.id, url=url, width=media.width, height=media.height, **extra)
    response.status_code = 201
    response.headers["Location"] = url
    return response


# -- listing and deleting ---------------------------------------------------------------------


@dataclass
class Use:
    """An article that shows an image, as the person looking may know it."""

    title: str
    url: str | None = None
    article_id: int | None = None


def describe_use(article: Article) -> Use:
    """Name an article that uses an image: one this person may edit, or a public one.

    Someone else's unpublished draft is only "a draft by another author": its title is theirs
    to share, but that it uses the image still matters (it cannot be deleted from under them).
    """
    if can_edit(current_user, article):
        return Use(article.title, url_for("studio.edit", article_id=article.id), article.id)
    if article.is_public():
        return Use(article.title, url_for("public.article", slug=article.slug), article.id)
    return Use("a draft by another author")


@dataclass
class MediaItem:
    """One image as the media pages show it."""

    id: int
    url: str
    thumbnail_url: str
    width: int
    height: int
    bytes: int
    format: str
    uploaded_by: str
    uploaded_at: datetime
    article_id: int | None
    used_in: list[Article] = field(default_factory=list)

    @property
    def used(self) -> bool:
        return bool(self.used_in)

    @property
    def uses(self) -> list[Use]:
        """Where it is used, as the person looking may know it (see describe_use)."""
        return [describe_use(article) for article in self.used_in]


# What describe_use reads of an article: no text, no related rows (an image may have many uses).
_NAMED_BY = (
    load_only(
        Article.id,
        Article.slug,
        Article.title,
        Article.author_id,
        Article.published_at,
        Article.published_revision_id,
    ),
    lazyload("*"),
)


def where_used(media: list[Media]) -> dict[int, list[Article]]:
    """Map each image to the articles whose newest or published text shows it, in id order.

    The public page is the published text rendered, so it shows nothing that text does not
    name. Each revision's image hashes are stored with it (RevisionImage), so this is a lookup
    by hash, whatever the number of articles: reading the texts that could show an image cost
    seconds at tens of thousands of articles.
    """
    found: dict[int, list[Article]] = {m.id: [] for m in media}
    wanted: dict[str, list[int]] = {}  # a picture several people uploaded is a row each
    for m in media:
        wanted.setdefault(m.sha256, []).append(m.id)
    newer = aliased(Revision)
    newest = (
        select(func.max(newer.number)).where(newer.article_id == Revision.article_id)
    ).scalar_subquery()
    shown: set[tuple[str, int]] = set()
    for chunk in in_chunks(list(wanted)):
        shown.update(
            db.session.execute(
                select(RevisionImage.sha256, Revision.article_id)
                .join(Revision, Revision.id == RevisionImage.revision_id)
                .join(Article, Article.id == Revision.article_id)
                .where(
                    RevisionImage.sha256.in_(chunk),
                    or_(Revision.id == Article.published_revision_id, Revision.number == newest),
                )
            ).all()
        )
    articles: dict[int, Article] = {}
    for chunk in in_chunks(sorted({article_id for _digest, article_id in shown})):
        query = select(Article).where(Article.id.in_(chunk)).options(*_NAMED_BY)
        articles.update((a.id, a) for a in db.session.scalars(query))
    for digest, article_id in sorted(shown, key=lambda pair: pair[1]):
        for media_id in wanted[digest]:
            found[media_id].append(articles[article_id])
    return found


def media_items(media: list[Media]) -> list[MediaItem]:
    """Describe images for the media pages: URLs, size, who uploaded them, where they are used."""
    used = where_used(media)
    items = []
    for m in media:
        smallest = m.variant_widths[0] if m.variant_widths else None
        items.append(
            MediaItem(
                id=m.id,
                url=url_for("media.file", name=m.key),
                thumbnail_url=url_for("media.file", name=variant_key(m.sha256, smallest))
                if smallest
                else url_for("media.file", name=m.key),
                width=m.width,
                height=m.height,
                bytes=m.bytes,
                format=m.ext,
                uploaded_by=m.uploaded_by.name if m.uploaded_by else "",
                uploaded_at=m.created_at,
                article_id=m.article_id,
                used_in=used[m.id],
            )
        )
    return items


def _article_or_404(article_id: int) -> Article:
    article = db.session.get(Article, article_id)
    if article is None or not can_edit(current_user, article):
        abort(404)
    return article


@bp.get("/studio/<int:article_id>/media")
@login_required
def article_media(article_id: int) -> Response | str:
    """List the images uploaded for an article or shown in it."""
    article = _article_or_404(article_id)
    latest = latest_revisions([article.id]).get(article.id)
    shown = [image.sha256 for image in latest.images] if latest else []
    query = (
        select(Media)
        .where(or_(Media.article_id == article.id, Media.sha256.in_(shown)))
        .order_by(Media.created_at.desc(), Media.id.desc())
        .limit(LIST_LIMIT)
    )
    # A picture several people uploaded is a row each: list it once, as this article's upload
    # where it is one, else the upload of the one who looks at it, else the newest.
    found = list(db.session.scalars(query).unique())
    best: dict[str, Media] = {}
    for m in sorted(
        found, key=lambda m: (m.article_id != article.id, m.uploaded_by_id != current_user.id)
    ):
        best.setdefault(m.sha256, m)
    return _media_page(media_items([m for m in found if best[m.sha256] is m]), article)


def _media_page(media: list[MediaItem], article: Article | None) -> Response | str:
    """Render the media page, or its data as JSON for a script (Accept: application/json)."""
    if request.accept_mimetypes.best == "application/json":
        return jsonify(
            media=[
                {
                    "id": item.id,
                    "url": item.url,
                    "thumbnail_url": item.thumbnail_url,
                    "width": item.width,
                    "height": item.height,
                    "bytes": item.bytes,
                    "format": item.format,
                    "uploaded_by": item.uploaded_by,
                    "uploaded_at": item.uploaded_at.isoformat(timespec="seconds"),
                    "used_in": [{"id": use.article_id, "title": use.title} for use in item.uses],
                }
                for item in media
            ]
        )
    return render_template("studio/media.html", media=media, article=article)


@bp.get("/studio/media")
@login_required
def all_media() -> Response | str:
    """List every image (an admin), or the images one has uploaded (an author)."""
    query = select(Media).order_by(Media.created_at.desc(), Media.id.desc()).limit(LIST_LIMIT)
    if not current_user.is_admin:
        query = query.where(Media.uploaded_by_id == current_user.id)
    return _media_page(media_items(list(db.session.scalars(query).unique())), None)


def may_delete(media: Media) -> bool:
    """Say whether the current user may delete an image: an admin, or who may edit its article."""
    if current_user.is_admin or media.uploaded_by_id == current_user.id:
        return True
    article = db.session.get(Article, media.article_id) if media.article_id else None
    return article is not None and can_edit(current_user, article)


@bp.post("/studio/media/<int:media_id>/delete")
@login_required
def delete(media_id: int) -> Response:
    """Delete an image nobody uses; refuse one that an article shows, saying which."""
    media = db.session.get(Media, media_id)
    if media is None or not may_delete(media):
        abort(404)
    back = safe_next(request.form.get("next")) if request.form.get("next") else None
    if back is None:
        back = (
            url_for("media.article_media", article_id=media.article_id)
            if media.article_id
            else url_for("media.all_media")
        )
    # Another upload of the picture keeps its files: this one's row may go, wherever it is shown.
    # The rows are counted in the picture's turn: two people deleting theirs at once each saw
    # the other's, skipped the use check, and both went (PostgreSQL).
    rows = picture_rows(media.sha256)
    if media not in rows:  # deleted meanwhile (a second click)
        abort(404)
    shared = len(rows) > 1
    used = [] if shared else where_used([media])[media.id]
    wants_json = request.accept_mimetypes.best == "application/json"
    if used:
        uses = [describe_use(article) for article in used]
        titles = ", ".join(f"“{use.title}”" if use.url else use.title for use in uses)
        message = f"This image is used in {titles}; remove it there first."
        if wants_json:
            return _error(409, message)
        flash(message, "error")
        return redirect(back)
    keys = media_keys(media)
    db.session.delete(media)
    db.session.flush()
    # The files go before the commit ends the picture's turn: an upload waiting for it then
    # finds no row and writes them again (after the commit, it could write them first).
    try:
        if not shared:
            delete_files(media)
    except storage.StorageUnavailable:  # the image is gone from the site; only bytes are left
        current_app.logger.warning("deleted media %s; its files stay in storage", media.key)
    else:
        kept = "kept for another upload of it" if shared else "deleted"
        current_app.logger.info("deleted media %s (%d files %s)", media.key, len(keys), kept)
    db.session.commit()
    if wants_json:
        return jsonify(deleted=media_id)
    flash("Image deleted.", "info")
    return redirect(back)


# -- pages ------------------------------------------------------------------------------------


def first_image_key(body_html: str) -> str | None:
    """Return the file name of an article's first image of ours (its og:image), or None."""
    match = re.search(r'<img[^>]*?\ssrc="/media/([0-9a-f]{64}\.[a-z]+)"', body_html or "")
    return match.group(1) if match else None
