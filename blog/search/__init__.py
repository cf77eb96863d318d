"""Search and the public list: the index (two backends), the query, and what readers may see.

- `visibility`: the one "visible to readers" rule (is_public, public_articles);
- `index`: the index interface, the reader's words as `Terms`, the backend for the database;
- `sqlite_fts` and `postgres_fts`: the two backends;
- `query`: the list's filters, one page of results and the counts, whatever the backend.
"""

from __future__ import annotations

from ..params import MAX_PAGE
from .index import (
    MAX_QUERY_CHARS,
    MAX_TERMS,
    Marked,
    SearchIndex,
    Terms,
    index_article,
    parse_terms,
    rebuild_index,
    search_index,
)
from .query import (
    COUNT_CAP,
    PAGE_SIZE,
    PROVENANCES,
    Filters,
    Highlight,
    Hit,
    Results,
    find_articles,
    parse_filters,
)
from .sqlite_fts import build_match
from .visibility import (
    category_is_public,
    category_used,
    is_public,
    public_articles,
    tag_is_public,
    tag_used,
)

__all__ = [
    "COUNT_CAP",
    "MAX_PAGE",
    "MAX_QUERY_CHARS",
    "MAX_TERMS",
    "PAGE_SIZE",
    "PROVENANCES",
    "Filters",
    "Highlight",
    "Hit",
    "Marked",
    "Results",
    "SearchIndex",
    "Terms",
    "build_match",
    "category_is_public",
    "category_used",
    "find_articles",
    "index_article",
    "is_public",
    "parse_filters",
    "parse_terms",
    "public_articles",
    "rebuild_index",
    "search_index",
    "tag_is_public",
    "tag_used",
]
