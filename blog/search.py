"""The public article list: filters, full-text search over SQLite FTS5, snippets and counts.

Every word a reader types is quoted before it reaches FTS5 (doubling any quote inside), so no
input is FTS syntax: `multi-agent` is a phrase rather than a column filter, `NOT` is a word, and a
lone `"` is nothing at all. Only the word still being typed gets a `*` so that "kube" finds
Kubernetes. Ranking is BM25 with the title weighted highest.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime

from markupsafe import Markup, escape
from sqlalchemy import (
    Column,
    ColumnElement,
    Integer,
    MetaData,
    Select,
    Table,
    Text,
    and_,
    delete,
    exists,
    func,
    insert,
    literal_column,
    select,
)
from sqlalchemy.exc import OperationalError

from .content import plain_text
from .extensions import db
from .models import Article, ArticleTag, Category, Tag, utcnow

PAGE_SIZE = 20
MAX_QUERY_CHARS = 200
MAX_TERMS = 12
# Counting every match of a very broad query is the slow tail of live search; past this we say "N+".
COUNT_CAP = 1000
# Column weights for bm25(): title, summary, tags, body.
WEIGHTS = (10.0, 4.0, 6.0, 1.0)
MARK_OPEN, MARK_CLOSE = "\x02", "\x03"
PROVENANCES = {"ai": "AI-generated, reviewed", "human": "Human-written"}

FTS_TABLE = "articles_fts"
FTS_DDL = (
    f"CREATE VIRTUAL TABLE IF NOT EXISTS {FTS_TABLE} USING fts5("
    "title, summary, tags, body, "
    "tokenize = 'porter unicode61 remove_diacritics 2', prefix = '2 3')"
)

# A Core view of the FTS table, outside the models' metadata so Alembic never tries to manage it.
fts = Table(
    FTS_TABLE,
    MetaData(),
    Column("rowid", Integer, primary_key=True),
    Column("title", Text),
    Column("summary", Text),
    Column("tags", Text),
    Column("body", Text),
)


def build_match(query: str) -> str | None:
    """Turn free text into a safe FTS5 MATCH expression, or None when nothing searchable is left."""
    query = query.replace("\x00", " ")[:MAX_QUERY_CHARS]
    words = [word for word in query.split() if any(ch.isalnum() for ch in word)][:MAX_TERMS]
    if not words:
        return None
    still_typing = not query[-1:].isspace()
    terms = []
    for position, word in enumerate(words):
        term = '"' + word.replace('"', '""') + '"'
        # A one-letter prefix matches half the index and ranks all of it; wait for a second letter.
        alnum = sum(ch.isalnum() for ch in word)
        if still_typing and position == len(words) - 1 and alnum >= 2:
            term += "*"
        terms.append(term)
    return " ".join(terms)


def index_article(article: Article) -> None:
    """Put an article's published text into the search index (replacing what was there)."""
    db.session.execute(delete(fts).where(fts.c.rowid == article.id))
    if article.published_revision_id is None:
        return
    db.session.execute(
        insert(fts).values(
            rowid=article.id,
            title=article.title,
            summary=article.summary,
            tags=" ".join(tag.name for tag in article.tags),
            body=plain_text(article.body),
        )
    )


def rebuild_index() -> int:
    """Re-index every published article; return how many."""
    db.session.execute(delete(fts))
    articles = db.session.scalars(
        select(Article).where(Article.published_revision_id.is_not(None))
    ).all()
    for article in articles:
        index_article(article)
    return len(articles)


@dataclass
class Filters:
    """What the reader asked for, already checked: unknown slugs are kept to say so."""

    q: str = ""
    category_slug: str = ""
    tag_slug: str = ""
    provenance: str = ""  # "ai" (AI-generated, reviewed) or "human" (human-written)
    page: int = 1
    category: Category | None = None
    tag: Tag | None = None

    @property
    def unknown_category(self) -> bool:
        return bool(self.category_slug) and self.category is None

    @property
    def unknown_tag(self) -> bool:
        return bool(self.tag_slug) and self.tag is None

    @property
    def active(self) -> bool:
        return bool(self.q.strip() or self.category_slug or self.tag_slug or self.provenance)

    def params(self, **changes: object) -> dict[str, object]:
        """Return the query parameters for a link to these filters with some changed."""
        values: dict[str, object] = {
            "q": self.q.strip(),
            "category": self.category_slug,
            "tag": self.tag_slug,
            "provenance": self.provenance,
            "page": self.page if self.page > 1 else None,
        }
        values.update(changes)
        return {key: value for key, value in values.items() if value}


def parse_filters(args: dict[str, str]) -> Filters:
    """Read q, category, tag and page from request arguments; bad values never raise."""
    q = args.get("q", "").replace("\x00", "")[:MAX_QUERY_CHARS]
    category_slug = args.get("category", "").strip()[:80]
    tag_slug = args.get("tag", "").strip()[:80]
    try:
        page = int(args.get("page", "1"))
    except ValueError:
        page = 1
    provenance = args.get("provenance", "")
    filters = Filters(
        q=q,
        category_slug=category_slug,
        tag_slug=tag_slug,
        provenance=provenance if provenance in PROVENANCES else "",
        page=max(1, page),
    )
    if category_slug:
        filters.category = db.session.scalar(select(Category).filter_by(slug=category_slug))
    if tag_slug:
        filters.tag = db.session.scalar(select(Tag).filter_by(slug=tag_slug))
    return filters


@dataclass
class Hit:
    article: Article
    title: Markup | None = None
    summary: Markup | None = None
    snippet: Markup | None = None


@dataclass
class Results:
    filters: Filters
    hits: list[Hit]
    total: int
    total_capped: bool
    page: int
    pages: int
    category_counts: dict[int, int] = field(default_factory=dict)
    all_count: int = 0

    @property
    def count_label(self) -> str:
        """Say how many articles matched, as the count line shows it."""
        number = f"{self.total:,}{'+' if self.total_capped else ''}"
        return f"{number} article{'' if self.total == 1 and not self.total_capped else 's'}"


def is_public(now: datetime | None = None) -> ColumnElement[bool]:
    """Say in SQL that an article is visible to readers: approved, and its publish time passed."""
    return and_(
        Article.published_revision_id.is_not(None), Article.published_at <= (now or utcnow())
    )


def public_articles(now: datetime | None = None) -> Select:
    """Select the articles readers may see now."""
    return select(Article).where(is_public(now))


def _marked(text: str | None) -> Markup | None:
    """Escape FTS output and turn our private markers into <mark>."""
    if not text or MARK_OPEN not in text:
        return None
    escaped = str(escape(text))
    return Markup(escaped.replace(MARK_OPEN, "<mark>").replace(MARK_CLOSE, "</mark>"))


def find_articles(filters: Filters, now: datetime | None = None) -> Results:
    """Run the reader's filters: one page of hits, the total and the per-category counts."""
    now = now or utcnow()
    match = build_match(filters.q) if filters.q.strip() else None
    impossible = (
        filters.unknown_category or filters.unknown_tag or (filters.q.strip() and match is None)
    )
    if impossible:
        return Results(filters, [], 0, False, 1, 1)

    base = public_articles(now)
    if filters.provenance:
        base = base.where(Article.ai_generated.is_(filters.provenance == "ai"))
    if filters.tag is not None:
        base = base.where(
            exists().where(ArticleTag.article_id == Article.id, ArticleTag.tag_id == filters.tag.id)
        )
    if match is not None:
        base = base.join(fts, fts.c.rowid == Article.id).where(
            literal_column(FTS_TABLE).op("MATCH")(match)
        )
    in_category = (
        base.where(Article.category_id == filters.category.id) if filters.category else base
    )

    try:
        total, capped = _count(in_category)
        pages = max(1, math.ceil(total / PAGE_SIZE))
        page = min(filters.page, pages)
        hits = _page_of_hits(in_category, match, page)
        counts = _category_counts(base)
    except OperationalError:  # defence in depth: the quoting above should make this unreachable
        db.session.rollback()
        return Results(filters, [], 0, False, 1, 1)
    return Results(filters, hits, total, capped, page, pages, counts, sum(counts.values()))


def _count(query: Select) -> tuple[int, bool]:
    limited = query.with_only_columns(Article.id).limit(COUNT_CAP + 1).subquery()
    total = db.session.scalar(select(func.count()).select_from(limited)) or 0
    return min(total, COUNT_CAP), total > COUNT_CAP


def _category_counts(query: Select) -> dict[int, int]:
    inner = query.with_only_columns(Article.category_id).limit(COUNT_CAP * 10).subquery()
    rows = db.session.execute(
        select(inner.c.category_id, func.count()).group_by(inner.c.category_id)
    ).all()
    return {category_id: count for category_id, count in rows if category_id is not None}


def _page_of_hits(query: Select, match: str | None, page: int) -> list[Hit]:
    offset = (page - 1) * PAGE_SIZE
    if match is None:
        ordered = query.order_by(Article.published_at.desc(), Article.id.desc())
        articles = db.session.scalars(ordered.limit(PAGE_SIZE).offset(offset)).unique().all()
        return [Hit(article) for article in articles]

    fts_col = literal_column(FTS_TABLE)
    score = func.bm25(fts_col, *WEIGHTS)
    ranked = query.add_columns(
        func.highlight(fts_col, 0, MARK_OPEN, MARK_CLOSE),
        func.highlight(fts_col, 1, MARK_OPEN, MARK_CLOSE),
        func.snippet(fts_col, 3, MARK_OPEN, MARK_CLOSE, "…", 16),
    ).order_by(score, Article.published_at.desc())
    rows = db.session.execute(ranked.limit(PAGE_SIZE).offset(offset)).unique().all()
    return [
        Hit(article, _marked(title), _marked(summary), _marked(snippet))
        for article, title, summary, snippet in rows
    ]
