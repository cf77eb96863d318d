"""The public site: the list with search and chips, articles, feed, sitemap, robots, health."""

from __future__ import annotations

import base64
from urllib.parse import quote

from flask import (
    Blueprint,
    Response,
    abort,
    make_response,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_login import current_user
from sqlalchemy import func, select, text

from . import clock
from .articles import ai_original, source_text
from .content import headings, table_of_contents
from .diff import REVISION_FIELDS, changed_fields, diff_texts
from .extensions import db
from .htmx import render_page
from .models import (
    Article,
    ArticleTag,
    Category,
    Revision,
    User,
    last_public_change,
)
from .params import SQLITE_INT_MAX
from .search import (
    PAGE_SIZE,
    category_is_public,
    find_articles,
    is_public,
    parse_filters,
    public_articles,
)
from .templating import PROVENANCE_LABELS, absolute_url, long_date

bp = Blueprint("public", __name__)

FEED_SIZE = 20
# URLs per sitemap file. The protocol allows 50,000, but building that many took 0.6-1.6 s, by
# the machine, every time the page cache turned over; 5,000 take 0.05-0.2 s (bench/README.md).
SITEMAP_PAGE = 5_000
XML = "application/xml; charset=utf-8"


@bp.get("/")
def index() -> Response:
    """List published articles, filtered by text, category and tag; a fragment for htmx."""
    filters = parse_filters(request.args)
    results = find_articles(filters)
    categories = db.session.scalars(
        select(Category).where(category_is_public()).order_by(Category.position, Category.name)
    )
    return render_page(
        "public/index.html",
        "results",
        results=results,
        filters=filters,
        categories=list(categories),
        reviewers=_reviewers,  # called by the template: a fragment never renders the hero
        page_size=PAGE_SIZE,
        provenances=PROVENANCE_LABELS,
    )


def _reviewers() -> list[str]:
    """Name the people who reviewed published AI-generated articles (an index lookup each)."""
    reviewed = (
        select(Article.id)
        .where(Article.reviewed_by_id == User.id, Article.ai_generated.is_(True), is_public())
        .exists()
    )
    return list(db.session.scalars(select(User.name).where(reviewed).order_by(User.id)))


def _public_article(slug: str) -> Article:
    """Find a published article; 410 when an admin took it down, 404 for anything unpublished."""
    found = db.session.scalar(select(Article).filter_by(slug=slug))
    if found is not None and found.taken_down_at is not None and not found.is_public():
        abort(410, description=f"It was taken down on {long_date(found.taken_down_at)}.")
    if found is None or not found.is_public():
        abort(404)
    return found


@bp.get("/articles/<slug>")
def article(slug: str) -> str:
    """Show one published article (a 404 to anyone who may not see it)."""
    found = _public_article(slug)
    older = db.session.scalar(
        public_articles()
        .where(Article.published_at < found.published_at)
        .order_by(Article.published_at.desc())
        .limit(1)
    )
    newer = db.session.scalar(
        public_articles()
        .where(Article.published_at > found.published_at)
        .order_by(Article.published_at.asc())
        .limit(1)
    )
    return render_template(
        "public/article.html",
        article=found,
        published=db.session.get(Revision, found.published_revision_id),
        toc=table_of_contents(headings(found.body)),
        older=older,
        newer=newer,
        related=_related(found),
    )


RELATED_CANDIDATES = 200  # the newest articles per tag that are considered


def _related(article: Article, limit: int = 3) -> list[Article]:
    """Find published articles sharing the most tags (then the category), newest first.

    Candidates are the newest few hundred articles per tag, read from the (tag_id, article_id)
    index, so a tag on tens of thousands of articles costs no more than a rare one.
    """
    shared: dict[int, int] = {}
    for link in article.tag_links:
        newest = db.session.scalars(
            select(ArticleTag.article_id)
            .where(ArticleTag.tag_id == link.tag_id, ArticleTag.article_id != article.id)
            .order_by(ArticleTag.article_id.desc())
            .limit(RELATED_CANDIDATES)
        )
        for article_id in newest:
            shared[article_id] = shared.get(article_id, 0) + 1
    best = sorted(shared, key=lambda article_id: (shared[article_id], article_id), reverse=True)
    found = list(
        db.session.scalars(public_articles().where(Article.id.in_(best[: limit * 10]))).unique()
    )
    found.sort(key=lambda other: (shared[other.id], other.published_at), reverse=True)
    if len(found) < limit and article.category_id is not None:
        same_category = public_articles().where(
            Article.category_id == article.category_id,
            Article.id.not_in([article.id, *[a.id for a in found]]),
        )
        found += db.session.scalars(
            same_category.order_by(Article.published_at.desc()).limit(limit - len(found))
        ).unique()
    return found[:limit]


@bp.get("/articles/<slug>/changes")
def changes(slug: str) -> str:
    """Show readers what the reviewer changed between the AI's draft and the published text.

    An AI article written in the editor has no AI original kept apart (only the API and imports
    keep one): the page says so, and still shows how to check the approved text.
    """
    found = _public_article(slug)
    if not found.ai_generated:
        abort(404)
    original = ai_original(found)
    published = db.session.get(Revision, found.published_revision_id)
    if published is None:
        abort(404)
    compared = original is not None
    return render_template(
        "public/changes.html",
        article=found,
        original=original,
        published=published,
        body_diff=diff_texts(original.body, published.body) if compared else None,
        field_changes=changed_fields(original, published, REVISION_FIELDS[:2]) if compared else [],
    )


@bp.get("/articles/<slug>/source.txt")
def source(slug: str) -> Response:
    """Serve the approved text exactly as sealed: its SHA-256 is the digest the approval recorded.

    Anyone can check a page against its review: `curl -s URL | sha256sum` prints the digest shown
    on /changes and in the article's JSON-LD.
    """
    found = _public_article(slug)
    published = db.session.get(Revision, found.published_revision_id)
    if published is None:
        abort(404)
    response = make_response(source_text(published))
    response.mimetype = "text/plain"
    # RFC 9530: the digest of the representation, base64 of the SHA-256 bytes between colons.
    encoded = base64.b64encode(bytes.fromhex(published.digest)).decode()
    response.headers["Repr-Digest"] = f"sha-256=:{encoded}:"
    return response


@bp.get("/categories/<slug>")
def category(slug: str) -> Response:
    """Redirect a category page to the filtered list."""
    return redirect(url_for("public.index", category=slug), 301)


@bp.get("/tags/<slug>")
def tag(slug: str) -> Response:
    """Redirect a tag page to the filtered list."""
    return redirect(url_for("public.index", tag=slug), 301)


@bp.get("/feed.xml")
def feed() -> Response:
    """Serve an Atom feed of the latest articles with their full content."""
    articles = (
        db.session.scalars(public_articles().order_by(Article.published_at.desc()).limit(FEED_SIZE))
        .unique()
        .all()
    )
    updated = max((a.public_updated_at for a in articles), default=clock.now())
    body = render_template("public/feed.xml", articles=articles, updated=updated)
    return _xml(body, "application/atom+xml; charset=utf-8")


@bp.get("/sitemap.xml")
def sitemap() -> Response:
    """List every published article for search engines or, past one page of them, the pages.

    A crawler reads a sitemap index at the same address as a sitemap, so robots.txt and the
    address people registered with search engines stay right as a blog grows.
    """
    pages = sitemap_pages()
    if pages == 1:
        return _sitemap_page(1)
    return _xml(render_template("public/sitemap_index.xml", pages=range(1, pages + 1)), XML)


@bp.get("/sitemap-<int:page>.xml")
def sitemap_page(page: int) -> Response:
    """List one page of published articles, oldest first, for the sitemap index."""
    if not 1 <= page <= SQLITE_INT_MAX // SITEMAP_PAGE:  # past it, the offset cannot be bound
        abort(404)
    return _sitemap_page(page)


def sitemap_pages() -> int:
    """Count the sitemap's pages: at least one, which lists the home page even on an empty blog."""
    count = db.session.scalar(select(func.count(Article.id)).where(is_public())) or 0
    return max(1, -(-count // SITEMAP_PAGE))


def _sitemap_page(page: int) -> Response:
    # Oldest first: a page keeps its articles as new ones arrive, and only the last one grows.
    rows = db.session.execute(
        public_articles()
        .with_only_columns(Article.slug, Article.published_at, Article.reviewed_at)
        .order_by(Article.published_at, Article.id)
        .offset((page - 1) * SITEMAP_PAGE)
        .limit(SITEMAP_PAGE)
    ).all()
    if not rows and page > 1:
        abort(404)  # past the last page: no count needed to know it
    # One url_for for the pattern, not thousands: the slug is the only part that changes.
    pattern = absolute_url("public.article", slug="SLUG")
    prefix, suffix = pattern.split("SLUG", 1)
    urls = [
        (f"{prefix}{quote(slug)}{suffix}", last_public_change(published_at, reviewed_at))
        for slug, published_at, reviewed_at in rows
    ]
    return _xml(render_template("public/sitemap.xml", urls=urls, with_home=page == 1), XML)


@bp.get("/robots.txt")
def robots() -> Response:
    """Tell crawlers what to skip and where the sitemap is."""
    response = make_response(render_template("public/robots.txt"))
    response.mimetype = "text/plain"
    return response


@bp.get("/healthz")
def healthz() -> tuple[dict[str, str], int]:
    """Answer 200 when the database is reachable, 503 when it is not."""
    try:
        db.session.execute(text("SELECT 1"))
    except Exception:  # any failure to reach the database is "unhealthy", not a 500
        return {"status": "unavailable", "database": "unreachable"}, 503
    return {"status": "ok", "database": "ok"}, 200


def _xml(body: str, mimetype: str) -> Response:
    response = make_response(body)
    response.headers["Content-Type"] = mimetype
    return response


@bp.app_context_processor
def inject_user() -> dict[str, object]:
    """Give every template the signed-in user."""
    return {"user": current_user}
