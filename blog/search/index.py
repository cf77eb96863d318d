"""The search index's interface, and the choice of its backend by the database in use.

Two backends implement it: `sqlite_fts` (SQLite FTS5) and `postgres_fts` (PostgreSQL full-text
search). Both index an article's *published revision* (title, tags, summary, Markdown body),
which is sealed and never changes, so neither needs to keep a copy of the text. The reader's
words are turned into `Terms` here, once, and each backend quotes them in its own syntax: no
input is ever a query syntax error.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from flask import current_app
from sqlalchemy import Select

from ..extensions import db
from ..models import Article

MAX_QUERY_CHARS = 200
MAX_TERMS = 12
# Private-use characters mark highlighted words in the backends' output, so they can never be
# confused with text and survive the Markdown-to-text clean-up of snippets.
MARK_OPEN, MARK_CLOSE = "\ue000", "\ue001"
EXTENSION_KEY = "blog.search"


@dataclass(frozen=True)
class Terms:
    """The words a reader typed, without syntax: `prefix` when the last one is still being typed."""

    words: tuple[str, ...]
    prefix: bool


def parse_terms(query: str) -> Terms | None:
    """Split free text into search words; None when nothing searchable is left."""
    query = query.replace("\x00", " ")[:MAX_QUERY_CHARS]
    words = tuple(word for word in query.split() if any(ch.isalnum() for ch in word))[:MAX_TERMS]
    if not words:
        return None
    # A one-letter prefix matches half the index and ranks all of it; wait for a second letter.
    still_typing = not query[-1:].isspace() and sum(ch.isalnum() for ch in words[-1]) >= 2
    return Terms(words, still_typing)


@dataclass(frozen=True)
class Marked:
    """An article's title, summary and body excerpt with the matched words between MARK_*."""

    title: str | None = None
    summary: str | None = None
    snippet: str | None = None


class SearchIndex(Protocol):
    """What the list, the review checks and the commands need from a full-text index."""

    def index_article(self, article: Article) -> None:
        """Put an article's published revision in the index, or take it out when unpublished."""

    def remove(self, article_id: int) -> None:
        """Take an article out of the index."""

    def rebuild(self) -> int:
        """Index every published article again (in bulk); return how many."""

    def add_new(self, article_ids: list[int]) -> None:
        """Index newly published articles that are not in the index yet, in bulk (imports)."""

    def bulk_loading(self, on: bool) -> None:
        """Trade some query speed for write speed while a large import goes in, and back.

        Executes, commits nothing: the caller commits it apart from the rows it writes, so that
        a batch rolled back never takes the setting with it.
        """

    def settle(self, terms: Terms) -> Terms:
        """Decide, once per search, how to match the word being typed (a backend's cost call)."""

    def matching(self, query: Select, terms: Terms) -> Select:
        """Restrict a select of articles to those matching every term."""

    def ranked_ids(self, query: Select, terms: Terms, limit: int, offset: int) -> list[int]:
        """Return one page of the ids `query` (filters, no match) selects that match, best first.

        Scoring every match costs time in proportion to their number: for up to COUNT_CAP.
        """

    def tiered_ids(self, query: Select, terms: Terms, limit: int, offset: int) -> list[int]:
        """Return one page of matching ids for a broad query without scoring each match.

        Title or tag matches come first, then the others, most recently approved first in each.
        """

    def highlights(self, article_ids: list[int], terms: Terms) -> dict[int, Marked]:
        """Mark the matched words in the shown articles only."""

    def similar(self, words: list[str], exclude_id: int, limit: int) -> list[int]:
        """Return public articles sharing the most of these words, best first."""


def search_index() -> SearchIndex:
    """Return this app's index backend, chosen once by its database's dialect."""
    extensions = current_app.extensions
    backend = extensions.get(EXTENSION_KEY)
    if backend is None:
        dialect = db.engine.dialect.name
        if dialect == "sqlite":
            from .sqlite_fts import SqliteIndex

            backend = SqliteIndex()
        elif dialect == "postgresql":
            from .postgres_fts import PostgresIndex

            backend = PostgresIndex()
        else:
            raise RuntimeError(f"no search backend for the {dialect} database")
        extensions[EXTENSION_KEY] = backend
    return backend


def index_article(article: Article) -> None:
    """Put an article's published text into the search index (or take it out when unpublished)."""
    search_index().index_article(article)


def rebuild_index() -> int:
    """Re-index every published article; return how many."""
    return search_index().rebuild()
