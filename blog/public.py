"""The public site: the list with search and chips, articles, feed, sitemap, robots, health."""

from __future__ import annotations

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
from sqlalchemy import func, or_, select, text

from .articles import ai_original
from .content import headings, table_of_contents
from .diff import REVISION_FIELDS, changed_fields, diff_texts
from .extensions import db
from .htmx import render_page
from .models import Article, ArticleTag, Category, Revision, User, utcnow
from .search import (
    PAGE_SIZE,
    PROVENANCES,
    find_articles,
    is_public,
    parse_filters,
    public_articles,
)

bp = Blueprint("public", __name__)

FEED_SIZE = 20
SITEMAP_LIMIT = 50_000  # the sitemap protocol's own limit per file


@bp.get("/")
def index() -> Response:
    """List published articles, filtered by text, category and tag; a fragment for htmx."""
    filters = parse_filters(request.args)
    results = find_articles(filters)
    categories = db.session.scalars(select(Category).order_by(Category.position, Category.name))
    return render_page(
        "public/index.html",
        "results",
        results=results,
        filters=filters,
        categories=list(categories),
        reviewers=_reviewers(),
        page_size=PAGE_SIZE,
        provenances=PROVENANCES,
    )


def _reviewers() -> list[str]:
    """Name the admins who reviewed the published AI-generated articles, most reviews first."""
    rows = db.session.execute(
        select(User.name, func.count())
        .select_from(Article)
        .join(User, User.id == Article.reviewed_by_id)
        .where(is_public(), Article.ai_generated.is_(True))
        .group_by(User.name)
        .order_by(func.count().desc(), User.name)
    ).all()
    return [name for name, _count in rows]


@bp.get("/articles/<slug>")
def article(slug: str) -> str:
    """Show one published article (a 404 to anyone who may not see it)."""
    found = db.session.scalar(select(Article).filter_by(slug=slug))
    if found is None or not found.is_public():
        abort(404)
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
        toc=table_of_contents(headings(found.body)),
        older=older,
        newer=newer,
        related=_related(found),
    )


def _related(article: Article, limit: int = 3) -> list[Article]:
    """Find published articles sharing tags or the category, most shared tags first."""
    tag_ids = [link.tag_id for link in article.tag_links]
    shared = (
        select(ArticleTag.article_id, func.count().label("shared"))
        .where(ArticleTag.tag_id.in_(tag_ids))
        .group_by(ArticleTag.article_id)
        .subquery()
    )
    query = (
        public_articles()
        .outerjoin(shared, shared.c.article_id == Article.id)
        .where(Article.id != article.id)
        .where(or_(shared.c.shared.is_not(None), Article.category_id == article.category_id))
        .order_by(func.coalesce(shared.c.shared, 0).desc(), Article.published_at.desc())
        .limit(limit)
    )
    return list(db.session.scalars(query).unique())


@bp.get("/articles/<slug>/changes")
def changes(slug: str) -> str:
    """Show readers what the reviewer changed between the AI's draft and the published text."""
    found = db.session.scalar(select(Article).filter_by(slug=slug))
    if found is None or not found.is_public() or not found.ai_generated:
        abort(404)
    original = ai_original(found)
    published = db.session.get(Revision, found.published_revision_id)
    if original is None or published is None:
        abort(404)
    return render_template(
        "public/changes.html",
        article=found,
        original=original,
        published=published,
        body_diff=diff_texts(original.body, published.body),
        field_changes=changed_fields(original, published, REVISION_FIELDS[:2]),
    )


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
    updated = max((a.updated_at for a in articles), default=utcnow())
    body = render_template("public/feed.xml", articles=articles, updated=updated)
    return _xml(body, "application/atom+xml; charset=utf-8")


@bp.get("/sitemap.xml")
def sitemap() -> Response:
    """List every published article for search engines."""
    rows = db.session.execute(
        public_articles()
        .with_only_columns(Article.slug, Article.updated_at)
        .order_by(Article.published_at.desc())
        .limit(SITEMAP_LIMIT)
    ).all()
    return _xml(render_template("public/sitemap.xml", rows=rows), "application/xml; charset=utf-8")


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
