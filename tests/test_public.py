"""The public site over HTTP: the seed page, fragments, filters, articles, feeds and headers."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta

import pytest

from blog.models import Status

from .conftest import ON_POSTGRES, parse

SEED = [
    # title, category, minutes, date, first three tags
    (
        "Building Scalable Microservices with Node.js and NestJS",
        "Backend",
        8,
        "20 Apr 2025",
        ["Node.js", "NestJS", "Microservices"],
    ),
    (
        "Django REST Framework: Patterns I Use in Production",
        "Backend",
        7,
        "10 Apr 2025",
        ["Python", "Django", "PostgreSQL"],
    ),
    (
        "OAuth2 & OpenID Connect: A Practical Implementation Guide",
        "Security",
        10,
        "28 Mar 2025",
        ["OAuth2", "OpenID Connect", "JWT"],
    ),
    (
        "PostgreSQL Performance: Indexing Strategies That Actually Work",
        "Database",
        9,
        "15 Mar 2025",
        ["PostgreSQL", "Performance", "SQL"],
    ),
    (
        "React Performance Patterns in 2025",
        "Frontend",
        7,
        "28 Feb 2025",
        ["React", "Next.js", "Performance"],
    ),
    (
        "Docker to Kubernetes: A Practical Path for Backend Engineers",
        "DevOps",
        11,
        "10 Feb 2025",
        ["Docker", "Kubernetes", "DevOps"],
    ),
    (
        "XGBoost in Production: From Training to REST API",
        "Machine Learning",
        9,
        "25 Jan 2025",
        ["Python", "XGBoost", "Machine Learning"],
    ),
    (
        "GraphQL vs REST: When to Use Each (An Honest Assessment)",
        "Backend",
        6,
        "12 Jan 2025",
        ["GraphQL", "REST", "API Design"],
    ),
]
CHIPS = [
    ("All", 8),
    ("Backend", 3),
    ("Security", 1),
    ("Database", 1),
    ("Frontend", 1),
    ("DevOps", 1),
    ("Machine Learning", 1),
]


def card_titles(soup) -> list[str]:  # noqa: ANN001
    return [" ".join(h.get_text().split()) for h in soup.select("#results .card-title")]


def test_home_page_is_the_seed_page(client):
    soup = parse(client.get("/"))
    hero = soup.select_one(".hero")
    assert hero.select_one(".eyebrow").get_text() == "Technical Writing"
    assert hero.h1.get_text() == "Tech Blog"
    assert "AI-assisted deep dives into backend engineering" in hero.select_one(".tagline").text
    assert hero.select_one(".provenance").get_text() == (
        "Articles labelled AI-generated are reviewed by Dennis Atonya"
    )
    assert soup.select_one("form[role=search] input[name=q]") is not None
    assert soup.select_one("#result-count").get_text(strip=True) == "8 articles"
    chips = [
        (a.contents[0].strip(), int(a.select_one(".chip-count").text))
        for a in soup.select("nav[aria-label=Categories] a")
    ]
    assert chips == CHIPS
    assert (
        soup.select_one("nav[aria-label=Categories] a[aria-current]").contents[0].strip() == "All"
    )

    cards = soup.select("#results .card")
    assert len(cards) == 8
    for card, (title, category, minutes, date, tags) in zip(cards, SEED, strict=True):
        assert card.select_one(".card-title").get_text(strip=True) == title
        assert card.select_one(".card-category").get_text(strip=True) == category
        assert (
            card.select_one(".reading-time").get_text(" ", strip=True).startswith(f"{minutes} min")
        )
        assert card.select_one(".card-summary").get_text(strip=True)
        shown = [a.get_text(strip=True) for a in card.select(".tags a.tag")]
        assert shown == tags
        assert card.select_one(".tag-more").contents[0].strip() == "+2"
        assert card.select_one("time").get_text() == date
        assert card.select_one(".read-link").get_text(strip=True) == "Read"


def test_fragment_request_gets_only_the_results(client):
    response = client.get("/?q=postgres", headers={"HX-Request": "true"})
    assert response.status_code == 200
    assert "HX-Request" in response.headers["Vary"]
    soup = parse(response)
    assert soup.find("html") is None and soup.find("header") is None
    roots = [el for el in soup.contents if getattr(el, "name", None)]
    assert [el.get("id") for el in roots] == ["results"]
    assert soup.select_one("#result-count")["role"] == "status"
    assert soup.select_one("#result-count")["aria-live"] == "polite"


def test_history_restore_gets_the_full_page(client):
    response = client.get(
        "/?q=postgres", headers={"HX-Request": "true", "HX-History-Restore-Request": "true"}
    )
    soup = parse(response)
    assert soup.find("html") is not None and soup.select_one("#results") is not None
    assert "HX-History-Restore-Request" in response.headers["Vary"]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("q=kube", ["Docker to Kubernetes: A Practical Path for Backend Engineers"]),
        ("category=database", ["PostgreSQL Performance: Indexing Strategies That Actually Work"]),
        ("tag=kubernetes", ["Docker to Kubernetes: A Practical Path for Backend Engineers"]),
        ("category=security&q=pkce", ["OAuth2 & OpenID Connect: A Practical Implementation Guide"]),
        (
            "q=index&category=database",
            ["PostgreSQL Performance: Indexing Strategies That Actually Work"],
        ),
        (
            "q=django&category=machine-learning&tag=python",
            ["XGBoost in Production: From Training to REST API"],
        ),
        ("q=kubernetes&category=frontend", []),
    ],
)
def test_filters_and_their_combinations(client, query, expected):
    soup = parse(client.get(f"/?{query}"))
    assert card_titles(soup) == expected


def test_tag_filter_lists_every_article_with_the_tag_newest_first(client):
    soup = parse(client.get("/?tag=python"))
    assert card_titles(soup) == [
        "Django REST Framework: Patterns I Use in Production",
        "XGBoost in Production: From Training to REST API",
    ]
    assert soup.select_one("input[type=hidden][name=tag]")["value"] == "python"
    assert "Tag: Python" in soup.select_one(".filter-pill").get_text()


def test_active_category_is_marked_and_kept_while_typing(client):
    soup = parse(client.get("/?category=backend&q=api"))
    current = soup.select(".chips a[aria-current]")
    assert [a.contents[0].strip() for a in current] == ["Backend"]
    hidden = soup.select_one("input[type=hidden][name=category]")
    assert hidden["value"] == "backend" and hidden["form"] == "search-form"
    # Chip links keep the text filter; the All chip drops only the category.
    assert soup.select_one(".chips a[aria-current]")["href"] == "/?q=api&category=backend"
    assert soup.select(".chips a")[0]["href"] == "/?q=api"


def test_title_matches_rank_first_and_words_are_highlighted(client):
    soup = parse(client.get("/?q=postgresql"))
    titles = card_titles(soup)
    assert titles[0] == "PostgreSQL Performance: Indexing Strategies That Actually Work"
    assert len(titles) >= 2  # the body of the DRF article mentions PostgreSQL too
    assert soup.select_one(".card-title mark").get_text() == "PostgreSQL"


def test_empty_state_offers_a_way_back(client):
    soup = parse(client.get("/?q=zzzzqqq"))
    assert soup.select_one("#result-count").get_text(strip=True).startswith("0 articles")
    empty = soup.select_one(".empty-state")
    assert "No articles match “zzzzqqq”" in empty.get_text()
    assert empty.select_one("a")["href"] == "/"


HOSTILE = [
    '"',
    '""',
    "'",
    "a'b",
    "AND",
    "OR",
    "NOT",
    "cats NOT dogs",
    "NEAR(",
    "NEAR(a b)",
    "title:foo",
    "col:",
    "*",
    "^",
    "^foo",
    "foo*",
    "(",
    ")",
    "a)(b",
    "-",
    "multi-agent",
    "::",
    "{title summary}: x",
    "\\",
    "%",
    "_",
    ";DROP TABLE articles;--",
    "x" * 5000,
    "😀🔥",
    "\x00",
    "a\x00b",
    "<script>alert(1)</script>",
    "  ",
    "+",
    "AND OR NOT",
    '"unterminated',
]


@pytest.mark.parametrize("query", HOSTILE)
def test_hostile_queries_answer_200(client, query):
    for headers in ({}, {"HX-Request": "true"}):
        response = client.get("/", query_string={"q": query}, headers=headers)
        assert response.status_code == 200
        assert "<script>alert" not in response.get_data(as_text=True)


def test_words_that_are_fts_operators_are_searched_as_words(client, make_article):
    make_article("Cats and dogs", body="A note on cats. Nothing else.")
    make_article("Dogs only", body="A note on dogs.")
    soup = parse(client.get("/?q=cats NOT dogs"))
    # NOT is a word, never an operator (that would find neither article either): FTS5 looks for
    # it and finds it in neither; PostgreSQL's English configuration drops it as a stop word.
    assert card_titles(soup) == (["Cats and dogs"] if ON_POSTGRES else [])
    soup = parse(client.get("/?q=cats dogs"))
    assert card_titles(soup) == ["Cats and dogs"]


@pytest.mark.parametrize(
    "query",
    [
        "page=abc",
        "page=-3",
        "page=0",
        "page=99999999999999999999999",
        "page=",
        "category=nope",
        "category=%00",
        "tag=nope",
        "category=" + "x" * 500,
    ],
)
def test_bad_page_and_filter_values_answer_200(client, query):
    response = client.get(f"/?{query}")
    assert response.status_code == 200
    soup = parse(response)
    if "category=nope" in query:
        assert "There is no category “nope”" in soup.select_one(".empty-state").get_text()


def test_pagination_past_twenty_cards(client, make_article):
    for n in range(15):
        make_article(
            f"Extra article {n:02d}",
            published_at=datetime(2024, 1, 1, tzinfo=UTC) + timedelta(days=n),
        )
    first = parse(client.get("/"))
    assert first.select_one("#result-count").get_text(strip=True) == "23 articles"
    assert len(first.select(".card")) == 20
    next_link = first.select_one(".pagination a[rel=next]")
    # A plain link: the list it sits in swaps it in place under htmx (see test_html.py).
    assert next_link["href"] == "/?page=2" and not [a for a in next_link.attrs if "hx-" in a]
    second = parse(client.get("/?page=2"))
    assert len(second.select(".card")) == 3
    assert card_titles(second)[-1] == "Extra article 00"
    assert "Page 2 of 2" in second.select_one(".pagination").get_text()
    # Past the end shows the last page rather than nothing.
    assert card_titles(parse(client.get("/?page=9"))) == card_titles(second)


def test_drafts_and_scheduled_articles_are_hidden(client, make_article):
    make_article("A quiet draft about kubernetes", status=Status.DRAFT)
    make_article(
        "Coming soon: kubernetes",
        status=Status.SCHEDULED,
        published_at=datetime.now(UTC) + timedelta(days=2),
    )
    titles = card_titles(parse(client.get("/?q=kubernetes")))
    assert titles == ["Docker to Kubernetes: A Practical Path for Backend Engineers"]
    assert client.get("/articles/a-quiet-draft-about-kubernetes").status_code == 404
    assert client.get("/articles/coming-soon-kubernetes").status_code == 404


def test_scheduled_article_appears_when_its_time_passes(app, client, make_article):
    from blog.extensions import db
    from blog.models import Article

    article_id = make_article("Soon", published_at=datetime.now(UTC) + timedelta(hours=1))
    assert client.get("/articles/soon").status_code == 404
    with app.app_context():
        db.session.get(Article, article_id).published_at = datetime.now(UTC) - timedelta(seconds=1)
        db.session.commit()
    assert client.get("/articles/soon").status_code == 200


def test_article_page(client):
    response = client.get("/articles/postgresql-performance-indexing-strategies-that-actually-work")
    assert response.status_code == 200
    soup = parse(response)
    assert soup.h1.get_text() == "PostgreSQL Performance: Indexing Strategies That Actually Work"
    assert soup.select_one(".post-header .eyebrow a").get_text() == "Database"
    assert soup.select_one(".post-meta time").get_text() == "15 March 2025"
    assert "9 min read" in soup.select_one(".post-meta").get_text()
    provenance = soup.select_one(".post-header .provenance").get_text(" ", strip=True)
    assert provenance.startswith("AI-generated · Reviewed by Dennis Atonya on 15 Mar 2025")
    tags = [a.get_text() for a in soup.select(".post-header .tags a")]
    assert tags[:3] == ["PostgreSQL", "Performance", "SQL"] and len(tags) == 5
    assert soup.select_one(".post-header .tags a")["href"] == "/?tag=postgresql"
    # Highlighted code, heading anchors with prefixed ids, a table of contents.
    assert soup.select(".prose pre.highlight[data-lang=sql] span.k")
    headings = soup.select(".prose h2[id]")
    assert headings and all(h["id"].startswith("sec-") for h in headings)
    assert [a["href"] for a in soup.select(".toc a")][0] == "#" + headings[0]["id"]
    assert soup.select_one(".prose table")
    # Neighbours and related articles.
    assert (
        soup.select_one(".post-nav a[rel=prev]")
        .get_text()
        .endswith("OAuth2 & OpenID Connect: A Practical Implementation Guide")
    )
    assert (
        soup.select_one(".post-nav a[rel=next]")
        .get_text()
        .endswith("React Performance Patterns in 2025")
    )
    related = [h.get_text(strip=True) for h in soup.select(".related .card-title")]
    assert "Django REST Framework: Patterns I Use in Production" in related


def test_article_metadata(client):
    soup = parse(client.get("/articles/react-performance-patterns-in-2025"))
    canonical = "http://blog.test/articles/react-performance-patterns-in-2025"
    assert soup.select_one("link[rel=canonical]")["href"] == canonical
    assert soup.select_one("meta[property='og:title']")["content"] == (
        "React Performance Patterns in 2025"
    )
    assert soup.select_one("meta[property='og:url']")["content"] == canonical
    assert soup.select_one("meta[name='twitter:card']")["content"] == "summary"
    disclosure = soup.select_one("meta[name='ai-disclosure']")["content"]
    assert disclosure == "ai-generated"  # the ai-disclosure proposals' vocabulary
    data = json.loads(soup.select_one("script[type='application/ld+json']").string)
    assert data["@type"] == "TechArticle"
    assert data["headline"] == "React Performance Patterns in 2025"
    assert data["datePublished"] == "2025-02-28T09:00:00Z"
    assert data["contributor"]["name"] == "Dennis Atonya"


def test_json_ld_cannot_be_broken_out_of(client, make_article):
    make_article("</script><script>alert(1)</script>", summary="'\"<b>")
    response = client.get("/articles/script-script-alert-1-script")
    soup = parse(response)
    data = json.loads(soup.select_one("script[type='application/ld+json']").string)
    assert data["headline"] == "</script><script>alert(1)</script>"
    assert len(soup.find_all("script", src=False)) == 1  # only the JSON-LD block


def test_unknown_article_is_a_404_in_the_layout(client):
    response = client.get("/articles/no-such-thing")
    assert response.status_code == 404
    soup = parse(response)
    assert soup.select_one("header.site-header") and "does not exist" in soup.h1.get_text()


@pytest.mark.parametrize(
    ("path", "target"),
    [("/categories/devops", "/?category=devops"), ("/tags/kubernetes", "/?tag=kubernetes")],
)
def test_category_and_tag_pages_redirect_to_the_filter(client, path, target):
    response = client.get(path)
    assert response.status_code == 301 and response.headers["Location"] == target


def test_atom_feed_has_full_content(client):
    response = client.get("/feed.xml")
    assert response.mimetype == "application/atom+xml"
    ns = {"a": "http://www.w3.org/2005/Atom"}
    root = ET.fromstring(response.data)
    entries = root.findall("a:entry", ns)
    assert len(entries) == 8
    first = entries[0]
    assert first.find("a:title", ns).text == SEED[0][0]
    assert first.find("a:link", ns).get("href") == (
        "http://blog.test/articles/building-scalable-microservices-with-node-js-and-nestjs"
    )
    assert "<h2" in first.find("a:content", ns).text


def test_sitemap_and_robots(client):
    root = ET.fromstring(client.get("/sitemap.xml").data)
    locs = [el.text for el in root.iter("{http://www.sitemaps.org/schemas/sitemap/0.9}loc")]
    assert len(locs) == 9 and locs[0] == "http://blog.test/"
    robots = client.get("/robots.txt")
    assert robots.mimetype == "text/plain"
    assert "Sitemap: http://blog.test/sitemap.xml" in robots.get_data(as_text=True)
    assert "Disallow: /studio/" in robots.get_data(as_text=True)


def test_healthz(client):
    response = client.get("/healthz")
    assert response.status_code == 200 and response.json["database"] == "ok"


@pytest.mark.parametrize("path", ["/", "/articles/react-performance-patterns-in-2025", "/nope"])
def test_security_headers_on_every_response(client, path):
    headers = client.get(path).headers
    csp = headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp.split("script-src")[1]
    assert "object-src 'none'" in csp and "frame-ancestors 'none'" in csp
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Referrer-Policy"] == "strict-origin-when-cross-origin"


def test_pages_have_no_inline_scripts_or_handlers(client):
    for path in ("/", "/articles/react-performance-patterns-in-2025", "/login"):
        soup = parse(client.get(path))
        inline = [s for s in soup.find_all("script") if not s.get("src")]
        assert all(s.get("type") == "application/ld+json" for s in inline)
        assert not [
            tag for tag in soup.find_all(True) if any(a.startswith("on") for a in tag.attrs)
        ]


def test_errors_answer_htmx_with_a_fragment_that_keeps_the_target(app, client):
    headers = {"HX-Request": "true", "HX-Target": "div#results"}
    response = client.get("/nope", headers=headers)
    assert response.status_code == 404
    soup = parse(response)
    assert soup.find("html") is None
    assert soup.select_one("#results [role=alert]") is not None
    plain = parse(client.get("/nope", headers={"HX-Request": "true"}))
    assert plain.find("html") is None and plain.select_one("[role=alert]")


def test_sitemap_is_rebuilt_when_an_article_is_published(client, make_article):
    before = client.get("/sitemap.xml").get_data(as_text=True)
    assert client.get("/sitemap.xml").get_data(as_text=True) == before
    make_article("Fresh off the press")
    after = client.get("/sitemap.xml").get_data(as_text=True)
    assert "/articles/fresh-off-the-press" in after and after != before


def test_chip_counts_are_exact_past_the_search_caps(app, client, monkeypatch):
    """The chips once stopped counting at a cap and showed a wrong number; now exact or none."""
    import blog.search.query as search

    monkeypatch.setattr(search, "CATEGORY_COUNT_CAP", 2)
    monkeypatch.setattr(search, "COUNT_CAP", 2)
    plain = parse(client.get("/"))
    chips = {
        a.contents[0].strip(): a.select_one(".chip-count")
        for a in plain.select("nav[aria-label=Categories] a")
    }
    assert chips["All"].get_text() == "8" and chips["Backend"].get_text() == "3"
    assert plain.select_one("#result-count").get_text(strip=True) == "2+ articles"
    searched = parse(client.get("/?q=production"))
    assert searched.select("nav[aria-label=Categories] .chip-count") == []
