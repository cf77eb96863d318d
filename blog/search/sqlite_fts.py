"""The SQLite backend: an FTS5 index over the published revisions, which it does not copy.

`articles_fts` is an FTS5 *external content* table whose content is `revisions`: it stores only
the index (terms and positions), and reads the text back from the revision when it needs it
(highlighting, and un-indexing). That is safe because the indexed revision is sealed: its text
never changes, so what FTS5 reads back is exactly what it indexed. `articles_fts_entries` says
which revision of which article is indexed (one per published article); the FTS rowid is the
revision id. SQLite 3.43's contentless-delete tables would do too, but Debian 12 ships 3.40.

Every word a reader types is quoted (doubling any quote inside), so no input is FTS syntax:
`multi-agent` is a phrase rather than a column filter, `NOT` is a word, and a lone `"` is
nothing at all. Only the word still being typed gets a `*`, so that "kube" finds Kubernetes.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    Column,
    Integer,
    MetaData,
    Select,
    Table,
    Text,
    delete,
    func,
    insert,
    literal_column,
    select,
    text,
)
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.expression import Join

from ..database import in_chunks
from ..extensions import db
from ..models import Article, Revision
from .index import MARK_CLOSE, MARK_OPEN, Marked, Terms, parse_terms
from .visibility import public_articles

FTS_TABLE = "articles_fts"
ENTRIES_TABLE = "articles_fts_entries"
# models.Article: (id, published_at, category_id, ai_generated), all the list's filters need.
LISTING_INDEX = "ix_articles_listing"
# Column weights for bm25(): title, summary, tags, body.
WEIGHTS = (10.0, 4.0, 6.0, 1.0)
SNIPPET_TOKENS = 16
# FTS5's `automerge`: how many segments of one level it merges at once (see bulk_loading).
DEFAULT_AUTOMERGE, BULK_AUTOMERGE = 4, 16

# Core views of the index tables, outside the models' metadata so Alembic never manages them
# (migrations 0001 and 0007 create them).
_metadata = MetaData()
fts = Table(
    FTS_TABLE,
    _metadata,
    Column("rowid", Integer, primary_key=True),  # the indexed revision's id
    Column("title", Text),
    Column("summary", Text),
    Column("tags", Text),
    Column("body", Text),
)
entries = Table(
    ENTRIES_TABLE,
    _metadata,
    Column("revision_id", Integer, primary_key=True),
    Column("article_id", Integer, nullable=False, unique=True),
)
_fts = literal_column(FTS_TABLE)


def quote(word: str) -> str:
    """Quote one word as an FTS5 string, doubling any quote inside."""
    return '"' + word.replace('"', '""') + '"'


def compile_terms(terms: Terms) -> str:
    """Write terms as an FTS5 expression: every word quoted, `*` only on the one being typed."""
    quoted = [quote(word) for word in terms.words]
    if terms.prefix:
        quoted[-1] += "*"
    return " ".join(quoted)


def build_match(query: str) -> str | None:
    """Turn free text into a safe FTS5 MATCH expression, or None when nothing searchable is left."""
    terms = parse_terms(query)
    return None if terms is None else compile_terms(terms)


def _in_title_or_tags(match: str) -> str:
    """Restrict an expression to the title and tags columns."""
    return f"{{title tags}} : ({match})"


class ForcedJoin(Join):
    """An inner join that SQLite must run in the order written (its left side as the outer loop).

    SQLite never reorders a CROSS JOIN. Left to itself, the planner may scan articles (say, by
    category) and run the MATCH once per row: 4.8 s instead of 9 ms at 100,000 articles.
    """

    inherit_cache = True
    index: str | None = None  # an index of the right-hand table to look rows up with


class ThroughListingIndex(ForcedJoin):
    """A forced join to articles through the listing index, which holds every filtered column.

    Looking articles up by primary key reads each large row to reach published_at (0.84 s
    instead of 0.28 s for 88,000 matches); INDEXED BY names the covering index instead.
    """

    inherit_cache = True
    index = LISTING_INDEX


@compiles(ForcedJoin, "sqlite")
def _compile_forced_join(join: ForcedJoin, compiler: SQLCompiler, **kw: Any) -> str:
    """Write the join as `left CROSS JOIN right [INDEXED BY index] ON ...` for SQLite."""
    kw.pop("asfrom", None)
    kw.pop("from_linter", None)  # the ON clause connects both sides: no cartesian product
    left = compiler.process(join.left, asfrom=True, **kw)
    right = compiler.process(join.right, asfrom=True, **kw)
    if join.index:
        right += f" INDEXED BY {join.index}"
    return f"{left} CROSS JOIN {right} ON {compiler.process(join.onclause, **kw)}"


def _joined(query: Select, match: str) -> Select:
    """Join a select of articles to the index, the FTS match driving, and apply the match."""
    from_index = ThroughListingIndex(
        ForcedJoin(fts, entries, entries.c.revision_id == fts.c.rowid),
        Article.__table__,
        Article.id == entries.c.article_id,
    )
    return query.select_from(from_index).where(_fts.op("MATCH")(match))


class SqliteIndex:
    """The FTS5 implementation of blog.search.index.SearchIndex."""

    def index_article(self, article: Article) -> None:
        """Index the article's published revision in place of the one indexed before, if any."""
        wanted = article.published_revision_id
        current = db.session.scalar(
            select(entries.c.revision_id).where(entries.c.article_id == article.id)
        )
        if current == wanted:
            return  # sealed: the same revision is the same text
        if current is not None:
            self.remove(article.id)
        if wanted is not None:
            db.session.execute(insert(entries).values(revision_id=wanted, article_id=article.id))
            db.session.execute(
                insert(fts).from_select(
                    ["rowid", "title", "summary", "tags", "body"],
                    select(
                        Revision.id, Revision.title, Revision.summary, Revision.tags, Revision.body
                    ).where(Revision.id == wanted),
                )
            )

    def remove(self, article_id: int) -> None:
        """Un-index an article: FTS5 reads the sealed revision back to know which terms to drop."""
        current = db.session.scalar(
            select(entries.c.revision_id).where(entries.c.article_id == article_id)
        )
        if current is None:
            return
        db.session.execute(delete(fts).where(fts.c.rowid == current))
        db.session.execute(delete(entries).where(entries.c.article_id == article_id))

    def rebuild(self) -> int:
        """Index every article's published revision again, in one statement."""
        db.session.execute(text(f"INSERT INTO {FTS_TABLE} ({FTS_TABLE}) VALUES ('delete-all')"))
        db.session.execute(delete(entries))
        db.session.execute(
            insert(entries).from_select(
                ["revision_id", "article_id"],
                select(Article.published_revision_id, Article.id).where(
                    Article.published_revision_id.is_not(None)
                ),
            )
        )
        db.session.execute(
            insert(fts).from_select(
                ["rowid", "title", "summary", "tags", "body"],
                select(
                    Revision.id, Revision.title, Revision.summary, Revision.tags, Revision.body
                ).join(entries, entries.c.revision_id == Revision.id),
            )
        )
        return db.session.scalar(select(func.count()).select_from(entries)) or 0

    def settle(self, terms: Terms) -> Terms:
        """Keep the word being typed a prefix, whatever its length.

        Prefixes of 2 to 4 letters (after stemming) come ready-made from the prefix index
        (migration 0009). A longer one makes FTS5 merge the postings of every term it begins,
        once per statement (~9 ms for "query"*, stemmed "queri"*, at 100,000 articles,
        bench/README.md), and matching the word whole once the index has it would be cheaper;
        but then "kube" finds only articles with the word "kube", not the Kubernetes ones,
        which is worse for a reader typing. Speed gives way here.
        """
        return terms

    def bulk_loading(self, on: bool) -> None:
        """Let FTS5 merge its segments 16 at a time during an import, instead of 4 (its default).

        Every batch's commit writes a new segment, and FTS5 merges segments as they accumulate
        (`automerge`). Merging 4 at a time rewrites each entry more often: at 10,000 imported
        articles the index took 13 s of a 28 s import; merging 16 at a time saves 3-5 s of it.
        More segments make a query read a few more b-trees until later writes merge them; the
        setting is persistent, so it is always put back to the default after, even on failure.
        """
        value = BULK_AUTOMERGE if on else DEFAULT_AUTOMERGE
        db.session.execute(
            text(f"INSERT INTO {FTS_TABLE} ({FTS_TABLE}, rank) VALUES ('automerge', :value)"),
            {"value": value},
        )

    def add_new(self, article_ids: list[int]) -> None:
        """Index newly published articles in two statements per IN_LIST_MAX of them."""
        for chunk in in_chunks(article_ids):
            db.session.execute(
                insert(entries).from_select(
                    ["revision_id", "article_id"],
                    select(Article.published_revision_id, Article.id).where(
                        Article.id.in_(chunk), Article.published_revision_id.is_not(None)
                    ),
                )
            )
            db.session.execute(
                insert(fts).from_select(
                    ["rowid", "title", "summary", "tags", "body"],
                    select(
                        Revision.id, Revision.title, Revision.summary, Revision.tags, Revision.body
                    )
                    .join(entries, entries.c.revision_id == Revision.id)
                    .where(entries.c.article_id.in_(chunk)),
                )
            )

    def matching(self, query: Select, terms: Terms) -> Select:
        """Restrict articles to the matches, the FTS index driving the join."""
        return _joined(query, compile_terms(terms))

    def ranked_ids(self, query: Select, terms: Terms, limit: int, offset: int) -> list[int]:
        """Rank title or tag matches first, then the others, each by BM25 (then newest first).

        BM25 alone is not enough: FTS5 counts a word that is in more than half the articles as
        nothing (its IDF is clamped to ~0), so a title of common words typed whole ("Debugging
        Cache Performance in NestJS") lost to near-namesakes with one of its words in their tags.
        The tier is the one broad searches use (tiered_ids). Its subquery is unfiltered, but it
        finds fewer rows than the match, and this runs only when that has few (COUNT_CAP).
        """
        match = compile_terms(terms)
        in_head = fts.c.rowid.in_(
            # Its own articles_fts, not the outer one: correlating would test the outer row.
            select(fts.c.rowid).where(_fts.op("MATCH")(_in_title_or_tags(match))).correlate(None)
        )
        ranked = (
            _joined(query.with_only_columns(Article.id), match)
            .order_by(in_head.desc(), func.bm25(_fts, *WEIGHTS), Article.published_at.desc())
            .limit(limit)
            .offset(offset)
        )
        return list(db.session.scalars(ranked))

    def tiered_ids(self, query: Select, terms: Terms, limit: int, offset: int) -> list[int]:
        """Page through title or tag matches, then the others, each most recently approved first.

        FTS5 walks its doclists by descending rowid (the revision id) and stops at the page: no
        match is scored and nothing is sorted.
        """
        match = compile_terms(terms)
        tiers = (_in_title_or_tags(match), f"({match}) NOT {_in_title_or_tags(match)}")
        found: list[int] = []
        wanted = offset + limit
        for tier in tiers:
            page = (
                _joined(query.with_only_columns(Article.id), tier)
                .order_by(fts.c.rowid.desc())
                .limit(wanted - len(found))
            )
            found += db.session.scalars(page)
            if len(found) >= wanted:
                break
        return found[offset:wanted]

    def highlights(self, article_ids: list[int], terms: Terms) -> dict[int, Marked]:
        """Run highlight() and snippet() for the shown articles only (they re-read the text)."""
        if not article_ids:
            return {}
        revisions = dict(
            db.session.execute(
                select(entries.c.revision_id, entries.c.article_id).where(
                    entries.c.article_id.in_(article_ids)
                )
            ).all()
        )
        if not revisions:
            return {}
        # One pass over a rowid range (the page's rows lie within a few hundred of each other,
        # mostly), the list tested outside FTS5: handed `rowid IN (...)`, SQLite runs the match
        # once per listed row, and a prefix the prefix index does not hold is expanded each
        # time (190 ms instead of 11 ms for "queri"* at 100,000 articles, bench/README.md).
        rows = db.session.execute(
            select(
                fts.c.rowid,
                func.highlight(_fts, 0, MARK_OPEN, MARK_CLOSE),
                func.highlight(_fts, 1, MARK_OPEN, MARK_CLOSE),
                func.snippet(_fts, 3, MARK_OPEN, MARK_CLOSE, "…", SNIPPET_TOKENS),
            ).where(
                _fts.op("MATCH")(compile_terms(terms)),
                fts.c.rowid.between(min(revisions), max(revisions)),
                (fts.c.rowid + 0).in_(list(revisions)),  # an expression: not given to FTS5
            )
        )
        return {
            revisions[rowid]: Marked(title, summary, snippet)
            for rowid, title, summary, snippet in rows
        }

    def similar(self, words: list[str], exclude_id: int, limit: int) -> list[int]:
        """Rank public articles by how many of the words they share (any of them may match)."""
        if not words:
            return []
        match = " OR ".join(quote(word) for word in words)
        ranked = (
            _joined(public_articles().with_only_columns(Article.id), match)
            .where(Article.id != exclude_id)
            .order_by(func.bm25(_fts, *WEIGHTS))
            .limit(limit)
        )
        return list(db.session.scalars(ranked))
