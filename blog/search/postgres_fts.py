"""The PostgreSQL backend: weighted tsvectors with GIN indexes, ranked with ts_rank_cd.

`articles_fts` holds, per published article, `document` (title A, tags B, summary C, body D, from
the published revision) and `head` (title and tags alone), each with a GIN index; migration 0007
creates it. They are tsvectors, not text: no second copy of the article is kept.

The reader's words never reach `to_tsquery` as typed. Whole words go through `plainto_tsquery`,
which reads no operators at all; only the word being typed becomes a prefix lexeme, and only
after everything but letters, digits and `_` is stripped from it, so `&`, `|`, `!`, `<->`, `:*`,
parentheses, quotes and backslashes are never tsquery syntax. The same configuration (CONFIG)
is used to index and to query, or nothing would match.
"""

from __future__ import annotations

import re

from sqlalchemy import (
    Column,
    ColumnElement,
    Integer,
    MetaData,
    Select,
    Table,
    delete,
    func,
    insert,
    literal,
    literal_column,
    not_,
    select,
)
from sqlalchemy.dialects.postgresql import TSVECTOR

from ..database import in_chunks
from ..extensions import db
from ..models import Article, Revision
from .index import MARK_CLOSE, MARK_OPEN, Marked, Terms
from .visibility import public_articles

CONFIG = "english"
_config = literal_column(f"'{CONFIG}'::regconfig")
_WORD_PIECE = re.compile(r"\w+")
HEADLINE = f'StartSel="{MARK_OPEN}", StopSel="{MARK_CLOSE}", HighlightAll=true'
SNIPPET = (
    f'StartSel="{MARK_OPEN}", StopSel="{MARK_CLOSE}", MaxWords=18, MinWords=8, '
    'MaxFragments=1, FragmentDelimiter=" … "'
)

pg_fts = Table(
    "articles_fts",
    MetaData(),  # outside the models' metadata: migration 0007 creates it on PostgreSQL only
    Column("article_id", Integer, primary_key=True),
    Column("head", TSVECTOR, nullable=False),
    Column("document", TSVECTOR, nullable=False),
)


def _weighted(column: ColumnElement[str], weight: str) -> ColumnElement:
    # The weight is a "char" constant (A-D), written into the SQL rather than bound as text.
    return func.setweight(
        func.to_tsvector(_config, func.coalesce(column, "")), literal_column(f"'{weight}'")
    )


def _head() -> ColumnElement:
    return _weighted(Revision.title, "A").op("||")(_weighted(Revision.tags, "B"))


def _document() -> ColumnElement:
    return (
        _head().op("||")(_weighted(Revision.summary, "C")).op("||")(_weighted(Revision.body, "D"))
    )


def tsquery(terms: Terms) -> ColumnElement:
    """Build a tsquery from the reader's words without ever parsing them as tsquery syntax."""
    whole = list(terms.words)
    prefix = ""
    if terms.prefix:
        pieces = _WORD_PIECE.findall(whole.pop())
        if pieces and len(pieces[-1]) >= 2:
            prefix = pieces.pop()
        whole += pieces
    query = func.plainto_tsquery(_config, " ".join(whole))
    if prefix:
        # Letters, digits and "_" only, inside quotes: a lexeme, never an operator.
        query = query.op("&&")(func.to_tsquery(_config, f"'{prefix}':*"))
    return query


def _ranked(query: Select, terms: Terms) -> tuple[Select, ColumnElement]:
    """Join the index to a select of articles and return it with the tsquery."""
    ts = tsquery(terms)
    joined = query.with_only_columns(Article.id).join(pg_fts, pg_fts.c.article_id == Article.id)
    return joined, ts


class PostgresIndex:
    """The PostgreSQL implementation of blog.search.index.SearchIndex."""

    def index_article(self, article: Article) -> None:
        """Replace the article's tsvectors with its published revision's (or drop them)."""
        self.remove(article.id)
        if article.published_revision_id is None:
            return
        db.session.execute(
            insert(pg_fts).from_select(
                ["article_id", "head", "document"],
                select(literal(article.id), _head(), _document()).where(
                    Revision.id == article.published_revision_id
                ),
            )
        )

    def remove(self, article_id: int) -> None:
        """Take an article out of the index."""
        db.session.execute(delete(pg_fts).where(pg_fts.c.article_id == article_id))

    def rebuild(self) -> int:
        """Compute every published article's tsvectors again, in one statement."""
        db.session.execute(delete(pg_fts))
        db.session.execute(
            insert(pg_fts).from_select(
                ["article_id", "head", "document"],
                select(Article.id, _head(), _document()).join(
                    Revision, Revision.id == Article.published_revision_id
                ),
            )
        )
        return db.session.scalar(select(func.count()).select_from(pg_fts)) or 0

    def settle(self, terms: Terms) -> Terms:
        """Keep the typed word a prefix: GIN finds a prefix's lexemes without merging postings."""
        return terms

    def bulk_loading(self, on: bool) -> None:
        """Nothing to change: the GIN index's pending list already batches inserts (fastupdate)."""

    def add_new(self, article_ids: list[int]) -> None:
        """Compute newly published articles' tsvectors in one statement per IN_LIST_MAX."""
        for chunk in in_chunks(article_ids):
            db.session.execute(
                insert(pg_fts).from_select(
                    ["article_id", "head", "document"],
                    select(Article.id, _head(), _document())
                    .join(Revision, Revision.id == Article.published_revision_id)
                    .where(Article.id.in_(chunk)),
                )
            )

    def matching(self, query: Select, terms: Terms) -> Select:
        """Restrict articles to those whose document matches (a GIN index scan)."""
        matches = select(pg_fts.c.article_id).where(pg_fts.c.document.bool_op("@@")(tsquery(terms)))
        return query.where(Article.id.in_(matches))

    def ranked_ids(self, query: Select, terms: Terms, limit: int, offset: int) -> list[int]:
        """Rank title or tag matches first, then the others, each with ts_rank_cd.

        ts_rank_cd's default weights: title 1.0, tags 0.4, summary 0.2, body 0.1. The tier is the
        one broad searches use (tiered_ids) and SQLite's ranking uses, so that both backends put
        an article whose title or tags hold every word first.
        """
        joined, ts = _ranked(query, terms)
        joined = joined.where(pg_fts.c.document.bool_op("@@")(ts))
        in_head = pg_fts.c.head.bool_op("@@")(ts)
        ranked = (
            joined.order_by(
                in_head.desc(),
                func.ts_rank_cd(pg_fts.c.document, ts).desc(),
                Article.published_at.desc(),
            )
            .limit(limit)
            .offset(offset)
        )
        return list(db.session.scalars(ranked))

    def tiered_ids(self, query: Select, terms: Terms, limit: int, offset: int) -> list[int]:
        """Page through title or tag matches, then the others, each newest first."""
        joined, ts = _ranked(query, terms)
        joined = joined.where(pg_fts.c.document.bool_op("@@")(ts))
        in_head = pg_fts.c.head.bool_op("@@")(ts)
        found: list[int] = []
        wanted = offset + limit
        for tier in (in_head, not_(in_head)):
            page = (
                joined.where(tier).order_by(pg_fts.c.article_id.desc()).limit(wanted - len(found))
            )
            found += db.session.scalars(page)
            if len(found) >= wanted:
                break
        return found[offset:wanted]

    def highlights(self, article_ids: list[int], terms: Terms) -> dict[int, Marked]:
        """Run ts_headline for the shown articles only: it re-parses each whole text."""
        if not article_ids:
            return {}
        ts = tsquery(terms)
        rows = db.session.execute(
            select(
                Article.id,
                func.ts_headline(_config, Article.title, ts, HEADLINE),
                func.ts_headline(_config, Article.summary, ts, HEADLINE),
                func.ts_headline(_config, Article.body, ts, SNIPPET),
            ).where(Article.id.in_(article_ids))
        )
        return {
            article_id: Marked(title, summary, snippet)
            for article_id, title, summary, snippet in rows
        }

    def similar(self, words: list[str], exclude_id: int, limit: int) -> list[int]:
        """Rank public articles by how many of the words they share (any of them may match)."""
        if not words:
            return []
        ts = func.plainto_tsquery(_config, words[0])
        for word in words[1:]:
            ts = ts.op("||")(func.plainto_tsquery(_config, word))
        ranked = (
            public_articles()
            .with_only_columns(Article.id)
            .join(pg_fts, pg_fts.c.article_id == Article.id)
            .where(pg_fts.c.document.bool_op("@@")(ts), Article.id != exclude_id)
            .order_by(func.ts_rank_cd(pg_fts.c.document, ts).desc())
            .limit(limit)
        )
        return list(db.session.scalars(ranked))
