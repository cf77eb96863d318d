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
from typing import Any

from markupsafe import Markup, escape
from sqlalchemy import (
    Column,
    ColumnElement,
    Integer,
    MetaData,
    Select,
    Table,
    Text,
    delete,
    exists,
    func,
    insert,
    literal_column,
    select,
)
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm.util import _ORMJoin
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.selectable import Join

from .content import plain_text
from .extensions import db
from .models import Article, ArticleTag, Category, Tag, utcnow
from .params import MAX_PAGE, clamped_int

PAGE_SIZE = 20
MAX_QUERY_CHARS = 200
MAX_TERMS = 12
# Counting every match of a very broad query is the slow tail of live search; past this we say "N+".
COUNT_CAP = 1000
CATEGORY_COUNT_CAP = 5000
# Column weights for bm25(): title, summary, tags, body.
WEIGHTS = (10.0, 4.0, 6.0, 1.0)
MARK_OPEN, MARK_CLOSE = "\x02", "\x03"
PROVENANCES = {"ai": "AI-generated, reviewed", "human": "Human-written"}

FTS_TABLE = "articles_fts"
LISTING_INDEX = (
    "ix_articles_listing"  # models.Article: (id, published_at, category_id, ai_generated)
)
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


@compiles(_ORMJoin, "sqlite")  # the ORM's joins have their own compiler dispatch
@compiles(Join, "sqlite")
def _fts_drives_the_join(join: Join, compiler: SQLCompiler, **kw: Any) -> str:
    """Make a join from the FTS table to articles a CROSS JOIN through the listing index.

    Left to itself, the planner may scan articles (say, by category) and run the MATCH once per
    row (4.8 s instead of 9 ms at 100,000 articles), and it looks articles up by primary key,
    reading each large row to reach published_at (0.84 s instead of 0.28 s for 88,000 matches).
    SQLite never reorders a CROSS JOIN, and INDEXED BY names the covering index (bench/README.md).
    """
    sql = compiler.visit_join(join, **kw)
    plain = f"{FTS_TABLE} JOIN {Article.__tablename__} ON "
    if join.left is fts and not join.isouter and not join.full and sql.startswith(plain):
        forced = f"{FTS_TABLE} CROSS JOIN {Article.__tablename__} INDEXED BY {LISTING_INDEX} ON "
        sql = forced + sql[len(plain) :]
    return sql


def matching_articles(match: str, now: datetime | None = None) -> Select:
    """Select the public articles matching an FTS expression, the index driving the join."""
    return (
        select(Article)
        .select_from(fts)
        .join(Article, Article.id == fts.c.rowid)
        .where(literal_column(FTS_TABLE).op("MATCH")(match), is_public(now))
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
    page = clamped_int(args.get("page"), 1, 1, MAX_PAGE)  # find_articles clamps to the last page
    provenance = args.get("provenance", "")
    filters = Filters(
        q=q,
        category_slug=category_slug,
        tag_slug=tag_slug,
        provenance=provenance if provenance in PROVENANCES else "",
        page=page,
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
    counts_exact: bool = True

    @property
    def count_label(self) -> str:
        """Say how many articles matched, as the count line shows it."""
        number = f"{self.total:,}{'+' if self.total_capped else ''}"
        return f"{number} article{'' if self.total == 1 and not self.total_capped else 's'}"


def is_public(now: datetime | None = None) -> ColumnElement[bool]:
    """Say in SQL that an article is visible to readers: its publish time has passed.

    Only articles.publish() sets published_at, together with published_revision_id, so this one
    column says "approved" too; it keeps the list's counts inside the (category_id, published_at)
    index instead of reading every row.
    """
    return Article.published_at <= (now or utcnow())


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

    base = public_articles(now) if match is None else matching_articles(match, now)
    if filters.provenance:
        base = base.where(Article.ai_generated.is_(filters.provenance == "ai"))
    if filters.tag is not None:
        # Correlated EXISTS: SQLite walks the published_at index and stops at a page's worth
        # (an IN list would gather every tagged id and sort them: 280 ms for a popular tag).
        base = base.where(
            exists().where(ArticleTag.article_id == Article.id, ArticleTag.tag_id == filters.tag.id)
        )
    in_category = (
        base.where(Article.category_id == filters.category.id) if filters.category else base
    )

    try:
        total, capped = _count(in_category)
        pages = max(1, math.ceil(total / PAGE_SIZE))
        page = min(filters.page, pages)
        hits = _page_of_hits(in_category, match, page)
        counts, exact = _category_counts(base, capped=match is not None or filters.tag is not None)
    except OperationalError:  # defence in depth: the quoting above should make this unreachable
        db.session.rollback()
        return Results(filters, [], 0, False, 1, 1)
    if not exact:
        counts = {}  # the chips show no number rather than a wrong one
    return Results(filters, hits, total, capped, page, pages, counts, sum(counts.values()), exact)


def _count(query: Select) -> tuple[int, bool]:
    limited = query.with_only_columns(Article.id).limit(COUNT_CAP + 1).subquery()
    total = db.session.scalar(select(func.count()).select_from(limited)) or 0
    return min(total, COUNT_CAP), total > COUNT_CAP


def _category_counts(query: Select, capped: bool) -> tuple[dict[int, int], bool]:
    """Count matches per category; say whether the counts are exact.

    Without a text query this is an index-only scan (about 25 ms at 100,000 articles). Counting
    every match of a broad text query is not worth its cost, so those stop at CATEGORY_COUNT_CAP.
    """
    inner = query.with_only_columns(Article.category_id)
    if capped:
        inner = inner.limit(CATEGORY_COUNT_CAP + 1)
    sub = inner.subquery()
    rows = db.session.execute(
        select(sub.c.category_id, func.count()).group_by(sub.c.category_id)
    ).all()
    counts = {category_id: count for category_id, count in rows if category_id is not None}
    return counts, not capped or sum(count for _id, count in rows) <= CATEGORY_COUNT_CAP


def _page_of_hits(query: Select, match: str | None, page: int) -> list[Hit]:
    offset = (page - 1) * PAGE_SIZE
    if match is None:
        ordered = query.order_by(Article.published_at.desc(), Article.id.desc())
        articles = db.session.scalars(ordered.limit(PAGE_SIZE).offset(offset)).unique().all()
        return [Hit(article) for article in articles]

    # Rank first, then fetch and highlight only the page shown: SQLite builds every result
    # column before ORDER BY ... LIMIT, so highlight() and snippet() in the ranking query would
    # run for every match (0.9 s for a word in 88,000 articles).
    fts_col = literal_column(FTS_TABLE)
    ranked = (
        query.with_only_columns(Article.id)
        .order_by(func.bm25(fts_col, *WEIGHTS), Article.published_at.desc())
        .limit(PAGE_SIZE)
        .offset(offset)
    )
    ids = list(db.session.scalars(ranked))
    if not ids:
        return []
    articles = {
        article.id: article
        for article in db.session.scalars(select(Article).where(Article.id.in_(ids))).unique()
    }
    marks = {
        rowid: (title, summary, snippet)
        for rowid, title, summary, snippet in db.session.execute(
            select(
                fts.c.rowid,
                func.highlight(fts_col, 0, MARK_OPEN, MARK_CLOSE),
                func.highlight(fts_col, 1, MARK_OPEN, MARK_CLOSE),
                func.snippet(fts_col, 3, MARK_OPEN, MARK_CLOSE, "…", 16),
            ).where(fts_col.op("MATCH")(match), fts.c.rowid.in_(ids))
        )
    }
    hits = []
    for article_id in ids:
        title, summary, snippet = marks.get(article_id, (None, None, None))
        hits.append(Hit(articles[article_id], _marked(title), _marked(summary), _marked(snippet)))
    return hits
