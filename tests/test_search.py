"""The FTS5 query builder and search behaviour beyond the HTTP tests."""

from __future__ import annotations

import pytest

from blog.search import build_match, find_articles, parse_filters

from .conftest import parse


@pytest.mark.parametrize(
    ("query", "match"),
    [
        ("kube", '"kube"*'),
        ("kube ", '"kube"'),
        ("docker kube", '"docker" "kube"*'),
        ("multi-agent", '"multi-agent"*'),
        ('say "hi', '"say" """hi"*'),
        ("cats NOT dogs", '"cats" "NOT" "dogs"*'),
        ("NEAR(a b)", '"NEAR(a" "b)"'),
        ("k", '"k"'),  # a one-letter prefix would match half the index
        ('"', None),
        ("* ^ ( )", None),
        ("", None),
        ("a\x00b", '"a" "b"'),
    ],
)
def test_build_match_quotes_every_word(query, match):
    assert build_match(query) == match


def test_build_match_limits_terms():
    assert build_match(" ".join(f"w{n}" for n in range(50))).count('"') == 24


def test_search_covers_title_summary_tags_and_body(app, ctx):
    def titles(q: str) -> set[str]:
        return {hit.article.title for hit in find_articles(parse_filters({"q": q})).hits}

    assert "React Performance Patterns in 2025" in titles("react")  # title
    assert "PostgreSQL Performance: Indexing Strategies That Actually Work" in titles("healthcare")
    assert titles("forecasting") >= {"XGBoost in Production: From Training to REST API"}  # tag
    assert "Docker to Kubernetes: A Practical Path for Backend Engineers" in titles("readiness")


def test_stemming_finds_other_forms(app, ctx):
    hits = find_articles(parse_filters({"q": "indexes "})).hits
    assert hits[0].article.title.startswith("PostgreSQL Performance")


def test_highlighted_text_is_escaped(client, make_article):
    make_article("<b>Bold</b> claims about caching", summary="<img src=x onerror=alert(1)>")
    soup = parse(client.get("/?q=caching"))
    title = soup.select_one(".card-title a")
    assert title.find("b") is None and "<b>Bold</b>" in title.get_text()
    assert title.find("mark").get_text() == "caching"
    assert soup.select_one(".card-summary img") is None


def test_counts_are_capped_for_broad_queries(app, ctx, monkeypatch):
    import blog.search.query as search

    monkeypatch.setattr(search, "COUNT_CAP", 3)
    results = find_articles(parse_filters({}))
    assert results.total == 3 and results.total_capped


def test_the_count_line_says_when_it_stopped_counting(client, monkeypatch):
    import blog.search.query as search

    monkeypatch.setattr(search, "COUNT_CAP", 3)
    count = parse(client.get("/")).select_one("#result-count").get_text(strip=True)
    assert count == "3+ articles"
