"""The public article list: the reader's filters, one page of results, counts. Backend-neutral.

The words go to the search index chosen for the database (blog.search.index); what readers may
see is blog.search.visibility's rule; how the results read (labels, counts, <mark>) is the
templates' business.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import Select, exists, func, select
from sqlalchemy.orm import defer

from .. import clock
from ..content import markdown_parser
from ..extensions import db
from ..models import Article, ArticleTag, Category, Tag
from ..params import MAX_PAGE, clamped_int
from .index import MARK_CLOSE, MARK_OPEN, MAX_QUERY_CHARS, Terms, parse_terms, search_index
from .visibility import category_is_public, public_articles, tag_is_public

PAGE_SIZE = 20
# Counting every match of a very broad query is the slow tail of live search; past this we say "N+"
# and a search's category chips show no numbers (bench/README.md, "Counting").
COUNT_CAP = 1000
PROVENANCES = ("ai", "human")  # AI-generated and reviewed, or written by a person

# A highlighted text: its pieces in order, each with whether it is a matched word.
Highlight = tuple[tuple[str, bool], ...]


@dataclass
class Filters:
    """What the reader asked for, already checked: unknown slugs are kept to say so."""

    q: str = ""
    category_slug: str = ""
    tag_slug: str = ""
    provenance: str = ""  # one of PROVENANCES, or "" for both
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
        filters.category = db.session.scalar(
            select(Category).filter_by(slug=category_slug).where(category_is_public())
        )
    if tag_slug:
        filters.tag = db.session.scalar(select(Tag).filter_by(slug=tag_slug).where(tag_is_public()))
    return filters


@dataclass
class Hit:
    """One article on the page, with its matched words marked when the reader searched."""

    article: Article
    title: Highlight | None = None
    summary: Highlight | None = None
    snippet: Highlight | None = None


@dataclass
class Results:
    """One page of the list, the total (capped at COUNT_CAP) and the per-category counts."""

    filters: Filters
    hits: list[Hit]
    total: int
    total_capped: bool
    page: int
    pages: int
    category_counts: dict[int, int] = field(default_factory=dict)
    all_count: int = 0
    counts_exact: bool = True
    # True when the matches were too many to score each: title and tag matches come first,
    # then the others, newest first in each (see bench/README.md, "Ranking broad searches").
    tiered: bool = False


# A card shows none of an article's text: loading 20 bodies and their HTML (~40 kB each) was a
# fifth of a search page's time at 100,000 articles. raiseload: a card that starts to show them
# fails its tests instead of loading them one by one.
CARD_ONLY = (
    defer(Article.body, raiseload=True),
    defer(Article.body_html, raiseload=True),
    defer(Article.ai_prompt, raiseload=True),
    defer(Article.taken_down_reason, raiseload=True),
)


def find_articles(filters: Filters, now: datetime | None = None) -> Results:
    """Run the reader's filters: one page of hits, the total and the per-category counts."""
    now = now or clock.now()
    terms = parse_terms(filters.q) if filters.q.strip() else None
    impossible = (
        filters.unknown_category or filters.unknown_tag or (filters.q.strip() and terms is None)
    )
    if impossible:
        return Results(filters, [], 0, False, 1, 1)

    base = public_articles(now)
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
    if terms is not None:
        index = search_index()
        terms = index.settle(terms)
        # Each backend joins its own index: ordering and highlighting need more than a filter.
        matching, matching_in_category = (
            index.matching(base, terms),
            index.matching(in_category, terms),
        )
    else:
        matching, matching_in_category = base, in_category

    broad = terms is not None or filters.tag is not None
    counts, exact, counted = _category_counts(matching, capped=broad)
    if filters.category is None and broad:
        # The chips counted these very rows (up to COUNT_CAP + 1): a text query's match, often a
        # prefix FTS5 must expand, then runs once less.
        total, capped = min(counted, COUNT_CAP), counted > COUNT_CAP
    else:
        total, capped = _count(matching_in_category)
    pages = max(1, math.ceil(total / PAGE_SIZE))
    page = min(filters.page, pages)
    offset = (page - 1) * PAGE_SIZE
    if terms is None:
        ordered = in_category.order_by(Article.published_at.desc(), Article.id.desc())
        page_of = ordered.limit(PAGE_SIZE).offset(offset).options(*CARD_ONLY)
        articles = db.session.scalars(page_of).unique().all()
        hits = [Hit(article) for article in articles]
    else:
        hits = _page_of_hits(in_category, terms, offset, tiered=capped)
    if not exact:
        counts = {}  # the chips show no number rather than a wrong one
    return Results(
        filters, hits, total, capped, page, pages, counts, sum(counts.values()), exact, capped
    )


def _count(query: Select) -> tuple[int, bool]:
    limited = query.with_only_columns(Article.id).limit(COUNT_CAP + 1).subquery()
    total = db.session.scalar(select(func.count()).select_from(limited)) or 0
    return min(total, COUNT_CAP), total > COUNT_CAP


def _category_counts(query: Select, capped: bool) -> tuple[dict[int, int], bool, int]:
    """Count matches per category; say whether they are exact, and how many rows were counted.

    Without a text query or a tag this is an index-only scan (about 25 ms at 100,000 articles).
    A search or a tag stops where the total does, at COUNT_CAP: counting on to 5,000 to show
    numbers up to there tested five times the rows (15-20 ms at 100,000 articles on
    PostgreSQL), and for a broad search only to learn there were too many to show.
    """
    inner = query.with_only_columns(Article.category_id)
    if capped:
        inner = inner.limit(COUNT_CAP + 1)
    sub = inner.subquery()
    rows = db.session.execute(
        select(sub.c.category_id, func.count()).group_by(sub.c.category_id)
    ).all()
    counts = {category_id: count for category_id, count in rows if category_id is not None}
    counted = sum(count for _id, count in rows)
    return counts, not capped or counted <= COUNT_CAP, counted


def _page_of_hits(query: Select, terms: Terms, offset: int, tiered: bool) -> list[Hit]:
    """Order the matches, then fetch and highlight only the page shown.

    Up to COUNT_CAP matches are ranked by relevance (BM25 on SQLite, ts_rank_cd on PostgreSQL).
    Past that, scoring every match is the cost that grows with the corpus (220 ms for 100,000
    matches), so the index pages through title and tag matches first, then the rest, newest
    first in each.
    """
    index = search_index()
    if tiered:
        ids = index.tiered_ids(query, terms, PAGE_SIZE, offset)
    else:
        ids = index.ranked_ids(query, terms, PAGE_SIZE, offset)
    if not ids:
        return []
    articles = {
        article.id: article
        for article in db.session.scalars(
            select(Article).where(Article.id.in_(ids)).options(*CARD_ONLY)
        ).unique()
    }
    marks = index.highlights(ids, terms)
    hits = []
    for article_id in ids:
        marked = marks.get(article_id)
        if marked is None:
            hits.append(Hit(articles[article_id]))
            continue
        snippet = _spans(_words_of(marked.snippet)) if marked.snippet else None
        hits.append(
            Hit(articles[article_id], _spans(marked.title), _spans(marked.summary), snippet)
        )
    return hits


def _words_of(markdown: str) -> str:
    """Return the words of a Markdown excerpt without its syntax (link targets, `#`, `*`).

    The backends cut excerpts from the published Markdown; parsing one costs ~0.1 ms where
    rendering it to HTML and stripping the tags would cost ten times as much.
    """
    blocks: list[str] = []
    for token in markdown_parser().parse(markdown):
        if token.type in ("fence", "code_block"):
            blocks.append(token.content)
        pieces = [
            " " if child.type in ("softbreak", "hardbreak") else child.content
            for child in token.children or []
            if child.type in ("text", "code_inline", "softbreak", "hardbreak")
        ]
        blocks.append("".join(pieces))
    return " ".join(" ".join(blocks).split())


def _spans(text: str | None) -> Highlight | None:
    """Split a backend's marked text into pieces; None when nothing in it is marked."""
    if not text or MARK_OPEN not in text:
        return None
    pieces: list[tuple[str, bool]] = []
    for part in text.split(MARK_OPEN):
        marked, _, rest = part.rpartition(MARK_CLOSE) if MARK_CLOSE in part else ("", "", part)
        if marked:
            pieces.append((marked.replace(MARK_CLOSE, ""), True))
        if rest:
            pieces.append((rest, False))
    return tuple(pieces)
