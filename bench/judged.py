"""A small judged query set on a generated corpus: do the top results stay right?

Broad searches are not scored match by match any more (blog.search.query): title and tag
matches come first, newest first. These judgements check that the first page still holds what
a reader means, against the exact ranking over every match (BM25 or ts_rank_cd):

- the title of a known article, typed as a query, finds an article with that title first;
- a rare word is ranked exactly (few matches): the same top 10 as the exact ranking;
- for broad queries, every one of the top 10 has the words in its title or tags, at least as
  many as in the exact ranking's top 10 (where the title's weight puts them too).
"""

from __future__ import annotations

import re

from flask import Flask
from sqlalchemy import text

from . import corpus

TOP = 10


def _head_words(article) -> list[str]:  # noqa: ANN001 - blog.models.Article
    """Return the lower-case words of an article's title and tag names."""
    head = " ".join([article.title, *(tag.name for tag in article.tags)]).lower()
    return re.findall(r"\w+", head)


def _in_head(article, terms) -> bool:  # noqa: ANN001 - an Article and blog.search.Terms
    """Say whether every term is a word (or, typed last, a word's start) of the title or tags."""
    words = _head_words(article)
    for position, term in enumerate(terms.words):
        term = term.lower()
        prefix = terms.prefix and position == len(terms.words) - 1
        # Stemming aside (the index stems, this does not), a shared stem of 4 letters counts.
        stem = term if prefix or len(term) <= 4 else term[: max(4, len(term) - 2)]
        if not any(word.startswith(stem) for word in words):
            return False
    return True


def judge(app: Flask) -> list[str]:
    """Run the judged queries; return one line each, starting with "ok" or "WORSE"."""
    from blog.extensions import db
    from blog.models import Article
    from blog.search import find_articles, parse_filters, parse_terms, public_articles
    from blog.search.index import search_index

    lines = []
    with app.app_context():
        size = db.session.execute(text("SELECT max(id) FROM articles")).scalar_one()
        known = db.session.get(Article, size // 2 + 1)
        assert known is not None
        queries = [(known.title + " ", "known title"), (corpus.vocabulary().rare_word, "rare")]
        # Broad: a word, a word being typed (4 letters: the prefix index's longest), two letters.
        queries += [(q, "broad") for q in (corpus.COMMON_WORD, "kube", "co", "cache tuning ")]
        index = search_index()
        for query, kind in queries:
            terms = parse_terms(query)
            assert terms is not None
            results = find_articles(parse_filters({"q": query}))
            shown = [hit.article for hit in results.hits[:TOP]]
            exact_ids = index.ranked_ids(public_articles(), terms, TOP, 0)
            exact = [db.session.get(Article, article_id) for article_id in exact_ids]
            label = f"q={query.strip()[:40]!r} ({kind}, {'tiered' if results.tiered else 'ranked'})"
            if kind == "known title":
                # Generated titles repeat (templates and tags): any article with it is right.
                ok = bool(shown) and shown[0].title == known.title
                lines.append(f"{'ok' if ok else 'WORSE':5} {label}: an article so titled first")
            elif kind == "rare":
                ok = [a.id for a in shown] == exact_ids
                lines.append(f"{'ok' if ok else 'WORSE':5} {label}: top {TOP} as ranked exactly")
            else:
                fast = sum(_in_head(a, terms) for a in shown)
                slow = sum(_in_head(a, terms) for a in exact if a is not None)
                same = len({a.id for a in shown} & set(exact_ids))
                ok = fast >= slow and len(shown) == min(TOP, len(exact_ids))
                lines.append(
                    f"{'ok' if ok else 'WORSE':5} {label}: words in title/tags {fast}/{len(shown)}"
                    f" (exact ranking {slow}/{len(exact)}; {same} of the same articles)"
                )
    return lines
