"""The public site over HTTP: the seed page, fragments, filters, articles, feeds and headers.

In this module `app` is an empty blog with one author and one reviewer, and each test makes the
articles it reads, so the demo's wording can change without breaking them. Only the seed-page
test reads the demo blog (`demo_client`): what it checks is that the demo reproduces the
customer's seed page. The next test checks the same parts of the page on its own articles.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient

from blog.extensions import db
from blog.models import Role, Status, User

from .conftest import ADMIN, AUTHOR, ON_POSTGRES, PASSWORD, Template, _make_app, parse

# The demo's articles as the seed page lists them.
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


REVIEWER_NAME = "Rosa Reviewer"  # not the demo's reviewer: these tests never read the demo


@pytest.fixture
def app(tmp_path: Path, template_databases: dict[str, Template]) -> Iterator[Flask]:
    """An empty blog with an author and a reviewer (the accounts make_article expects)."""
    app = _make_app(tmp_path, template_databases["empty"])
    with app.app_context():
        for email, name, role in (
            (AUTHOR, "Ada Author", Role.AUTHOR),
            (ADMIN, REVIEWER_NAME, Role.ADMIN),
        ):
            user = User(email=email, name=name, role=role)
            user.set_password(PASSWORD)
            db.session.add(user)
        db.session.commit()
    yield app
    with app.app_context():
        db.engine.dispose()


@pytest.fixture
def demo_client(tmp_path: Path, template_databases: dict[str, Template]) -> FlaskClient:
    """A visitor of the demo blog, for the test that is about the demo itself."""
    (tmp_path / "demo").mkdir()
    return _make_app(tmp_path / "demo", template_databases["demo"]).test_client()


def day(month: int, day: int, year: int = 2025) -> datetime:
    """A publication moment: 09:00 UTC on that day."""
    return datetime(year, month, day, 9, tzinfo=UTC)


def card_titles(soup) -> list[str]:  # noqa: ANN001
    return [" ".join(h.get_text().split()) for h in soup.select("#results .card-title")]


def test_home_page_is_the_seed_page(demo_client):
    """The demo blog's home page shows the customer's seed page: hero, chips and eight cards."""
    soup = parse(demo_client.get("/"))
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


def test_cards_chips_and_hero_show_what_the_seed_page_shows(client, make_article):
    """The seed page's parts, on articles of this test: the same rules whatever the demo says."""
    make_article(
        "Five tags",
        "word " * 450,  # 3 minutes at 200 words a minute
        summary="Why five tags.",
        category="Database",
        tags=["One", "Two", "Three", "Four", "Five"],
        published_at=day(3, 15),
    )
    make_article("Older", category="Security", published_at=day(3, 1))
    soup = parse(client.get("/"))
    assert soup.select_one(".hero .provenance").get_text() == (
        f"Articles labelled AI-generated are reviewed by {REVIEWER_NAME}"
    )
    assert soup.select_one("#result-count").get_text(strip=True) == "2 articles"
    chips = [
        (a.contents[0].strip(), int(a.select_one(".chip-count").text))
        for a in soup.select("nav[aria-label=Categories] a")
    ]
    assert chips == [("All", 2), ("Database", 1), ("Security", 1)]
    assert card_titles(soup) == ["Five tags", "Older"]
    card = soup.select_one("#results .card")
    assert card.select_one(".card-category").get_text(strip=True) == "Database"
    assert card.select_one(".reading-time").get_text(" ", strip=True).startswith("3 min")
    assert card.select_one(".card-summary").get_text(strip=True) == "Why five tags."
    assert [a.get_text(strip=True) for a in card.select(".tags a.tag")] == ["One", "Two", "Three"]
    assert card.select_one(".tag-more").contents[0].strip() == "+2"
    assert card.select_one("time").get_text() == "15 Mar 2025"
    assert card.select_one(".read-link").get_text(strip=True) == "Read"


def test_fragment_request_gets_only_the_results(client, make_article):
    make_article("Tuning PostgreSQL autovacuum")
    response = client.get("/?q=postgres", headers={"HX-Request": "true"})
    assert response.status_code == 200
    assert "HX-Request" in response.headers["Vary"]
    soup = parse(response)
    assert soup.find("html") is None and soup.find("header") is None
    roots = [el for el in soup.contents if getattr(el, "name", None)]
    # htmx names the tab (and the history entry) from the <title> and swaps in the list.
    assert [(el.name, el.get("id")) for el in roots] == [("title", None), ("div", "results")]
    assert roots[0].get_text() == "“postgres” · Tech Blog"
    assert card_titles(soup) == ["Tuning PostgreSQL autovacuum"]
    assert soup.select_one("#result-count")["role"] == "status"
    assert soup.select_one("#result-count")["aria-live"] == "polite"


def test_history_restore_gets_the_full_page(client, make_article):
    make_article("Tuning PostgreSQL autovacuum")
    response = client.get(
        "/?q=postgres", headers={"HX-Request": "true", "HX-History-Restore-Request": "true"}
    )
    soup = parse(response)
    assert soup.find("html") is not None and soup.select_one("#results") is not None
    assert card_titles(soup) == ["Tuning PostgreSQL autovacuum"]
    assert "HX-History-Restore-Request" in response.headers["Vary"]


# A small blog to filter, newest first. Each article is made for the cases below: words that
# only a prefix, a stem or a body finds, and words shared across categories, so each filter has
# something to leave out.
KUBERNETES = "Rolling out to Kubernetes without downtime"
INDEXES = "Partial indexes for a busy orders table"
TOKENS = "Token flows for single-page apps"
MODEL = "Serving a gradient-boosted model behind Django"
DJANGO_API = "A REST API in Django, step by step"
LISTS = "Rendering long lists in React"
SHELF = [
    # title, category, tags, body
    (KUBERNETES, "DevOps", ["Kubernetes", "Docker"], "Readiness probes keep traffic away."),
    (INDEXES, "Database", ["PostgreSQL", "SQL"], "An index on the open orders stays small."),
    (TOKENS, "Security", ["OAuth2"], "Use the authorization code flow with PKCE."),
    (MODEL, "Machine Learning", ["Python", "XGBoost"], "A Django view loads the model once."),
    (
        DJANGO_API,
        "Backend",
        ["Python", "Django"],
        "Each list needs an index for its order; clients sign in with PKCE.",
    ),
    (LISTS, "Frontend", ["React"], "Virtualised lists render only what is on screen."),
]


@pytest.fixture
def shelf(make_article) -> list[str]:  # noqa: ANN001
    """Publish SHELF, newest first (so the order of creation is not the order of dates)."""
    for n, (title, category, tags, body) in enumerate(SHELF):
        make_article(title, body, category=category, tags=tags, published_at=day(6, 30 - n))
    return [title for title, *_ in SHELF]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("q=kube", [KUBERNETES]),  # the word being typed is a prefix
        ("category=database", [INDEXES]),
        ("tag=kubernetes", [KUBERNETES]),
        ("category=security&q=pkce", [TOKENS]),  # the Backend article says PKCE too
        ("q=index&category=database", [INDEXES]),  # and the Backend one says index
        ("q=django&category=machine-learning&tag=python", [MODEL]),  # two say Django, tag Python
        ("q=kubernetes&category=frontend", []),
    ],
)
def test_filters_and_their_combinations(client, shelf, query, expected):
    soup = parse(client.get(f"/?{query}"))
    assert card_titles(soup) == expected


def test_each_filter_alone_finds_more_than_the_combination(client, shelf):
    """The combinations above narrow: each of their parts alone lets the others' articles in."""
    assert set(card_titles(parse(client.get("/?q=pkce")))) == {TOKENS, DJANGO_API}
    assert set(card_titles(parse(client.get("/?q=index")))) == {INDEXES, DJANGO_API}
    assert set(card_titles(parse(client.get("/?q=django&tag=python")))) == {MODEL, DJANGO_API}


def test_tag_filter_lists_every_article_with_the_tag_newest_first(client, shelf):
    soup = parse(client.get("/?tag=python"))
    assert card_titles(soup) == [MODEL, DJANGO_API]
    assert soup.select_one("input[type=hidden][name=tag]")["value"] == "python"
    assert "Tag: Python" in soup.select_one(".filter-pill").get_text()


def test_active_category_is_marked_and_kept_while_typing(client, shelf):
    soup = parse(client.get("/?category=backend&q=api"))
    current = soup.select(".chips a[aria-current]")
    assert [a.contents[0].strip() for a in current] == ["Backend"]
    hidden = soup.select_one("input[type=hidden][name=category]")
    assert hidden["value"] == "backend" and hidden["form"] == "search-form"
    # Chip links keep the text filter; the All chip drops only the category.
    assert soup.select_one(".chips a[aria-current]")["href"] == "/?q=api&category=backend"
    assert soup.select(".chips a")[0]["href"] == "/?q=api"


def test_title_matches_rank_first_and_words_are_highlighted(client, make_article):
    in_title = "Tuning PostgreSQL for heavy writes"
    in_body = "Choosing a job queue"  # newer, so the order is not just the dates'
    make_article(in_title, "Fewer indexes, bigger batches.", published_at=day(1, 10))
    make_article(in_body, "We kept the jobs in PostgreSQL for a year.", published_at=day(2, 10))
    soup = parse(client.get("/?q=postgresql"))
    assert card_titles(soup) == [in_title, in_body]
    assert soup.select_one(".card-title mark").get_text() == "PostgreSQL"


def test_empty_state_offers_a_way_back(client, make_article):
    make_article("An article that does not match")  # the list is empty for the query only
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
def test_hostile_queries_answer_200(client, make_article, query):
    # Words some of the queries find, so their results are highlighted as well as counted.
    make_article("A multi-agent note on cats, dogs and foo", body="More about dogs.")
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
    for n in range(23):
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
    make_article("Running kubernetes at home")
    make_article("A quiet draft about kubernetes", status=Status.DRAFT)
    make_article(
        "Coming soon: kubernetes",
        status=Status.SCHEDULED,
        published_at=datetime.now(UTC) + timedelta(days=2),
    )
    titles = card_titles(parse(client.get("/?q=kubernetes")))
    assert titles == ["Running kubernetes at home"]
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


# Four sections (enough for a table of contents), SQL to highlight, a table; about 500 words.
ARTICLE_BODY = (
    "## Why partial indexes\n\nMost queries only ever read the open orders.\n\n"
    "```sql\nCREATE INDEX orders_open ON orders (created_at) WHERE status = 'open';\n```\n\n"
    "## What they cost\n\n| Index | Size |\n|-------|------|\n| full | 2 GB |\n"
    "| partial | 40 MB |\n\n## When the planner uses them\n\n"
    + "The planner picks the smaller index. " * 80
    + "\n\n## What to watch\n\nQueries whose condition no longer matches.\n"
)


def test_article_page(client, make_article, clock):
    clock(day(3, 15))  # the day of the review
    make_article(
        INDEXES,
        ARTICLE_BODY,
        category="Database",
        tags=["PostgreSQL", "Performance", "SQL", "Indexes", "Operations"],
        published_at=day(3, 15),
    )
    clock(day(6, 1))  # read later, when every article below is out
    # Its neighbours by date, made out of order; only the nearest on each side is linked.
    for title, published in (
        ("Newer but not next", day(4, 10)),
        ("Older neighbour", day(3, 1)),
        ("Newer neighbour", day(3, 20)),
        ("Older but not previous", day(2, 1)),
    ):
        make_article(title, category="Frontend", published_at=published)
    make_article(
        "Pooling connections", category="Backend", tags=["PostgreSQL"], published_at=day(1, 5)
    )

    response = client.get("/articles/partial-indexes-for-a-busy-orders-table")
    assert response.status_code == 200
    soup = parse(response)
    assert soup.h1.get_text() == INDEXES
    assert soup.select_one(".post-header .eyebrow a").get_text() == "Database"
    assert soup.select_one(".post-meta time").get_text() == "15 March 2025"
    assert "3 min read" in soup.select_one(".post-meta").get_text()
    provenance = soup.select_one(".post-header .provenance").get_text(" ", strip=True)
    assert provenance.startswith(f"AI-generated · Reviewed by {REVIEWER_NAME} on 15 Mar 2025")
    tags = [a.get_text() for a in soup.select(".post-header .tags a")]
    assert tags[:3] == ["PostgreSQL", "Performance", "SQL"] and len(tags) == 5
    assert soup.select_one(".post-header .tags a")["href"] == "/?tag=postgresql"
    # Highlighted code, heading anchors with prefixed ids, a table of contents.
    assert soup.select(".prose pre.highlight[data-lang=sql] span.k")
    headings = soup.select(".prose h2[id]")
    assert len(headings) == 4 and all(h["id"].startswith("sec-") for h in headings)
    assert [a["href"] for a in soup.select(".toc a")][0] == "#" + headings[0]["id"]
    assert soup.select_one(".prose table")
    # Neighbours in the list's order (newest first: "prev" is the next newer one), and related
    # articles: those sharing a tag (the neighbours share none, nor the category).
    assert soup.select_one(".post-nav a[rel=prev]").get_text().endswith("Newer neighbour")
    assert soup.select_one(".post-nav a[rel=next]").get_text().endswith("Older neighbour")
    related = [h.get_text(strip=True) for h in soup.select(".related .card-title")]
    assert related == ["Pooling connections"]


def test_article_metadata(client, make_article):
    make_article(LISTS, category="Frontend", published_at=day(2, 28))
    soup = parse(client.get("/articles/rendering-long-lists-in-react"))
    canonical = "http://blog.test/articles/rendering-long-lists-in-react"
    assert soup.select_one("link[rel=canonical]")["href"] == canonical
    assert soup.select_one("meta[property='og:title']")["content"] == LISTS
    assert soup.select_one("meta[property='og:url']")["content"] == canonical
    assert soup.select_one("meta[name='twitter:card']")["content"] == "summary"
    disclosure = soup.select_one("meta[name='ai-disclosure']")["content"]
    assert disclosure == "ai-generated"  # the ai-disclosure proposals' vocabulary
    data = json.loads(soup.select_one("script[type='application/ld+json']").string)
    assert data["@type"] == "TechArticle"
    assert data["headline"] == LISTS
    assert data["datePublished"] == "2025-02-28T09:00:00Z"
    assert data["contributor"]["name"] == REVIEWER_NAME


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


def test_atom_feed_has_full_content(client, make_article):
    # Made oldest first, so the feed's order is the dates', not the order of creation.
    for n, title in enumerate(["Oldest", "Middle", "Newest"]):
        make_article(title, f"## Part {n}\n\nText.", published_at=day(3, 1 + n))
    response = client.get("/feed.xml")
    assert response.mimetype == "application/atom+xml"
    ns = {"a": "http://www.w3.org/2005/Atom"}
    root = ET.fromstring(response.data)
    entries = root.findall("a:entry", ns)
    assert [entry.find("a:title", ns).text for entry in entries] == ["Newest", "Middle", "Oldest"]
    first = entries[0]
    assert first.find("a:link", ns).get("href") == "http://blog.test/articles/newest"
    assert "<h2" in first.find("a:content", ns).text


def test_sitemap_and_robots(client, make_article):
    for title in ("First piece", "Second piece"):
        make_article(title)
    make_article("Not yet", status=Status.DRAFT)
    root = ET.fromstring(client.get("/sitemap.xml").data)
    locs = [el.text for el in root.iter("{http://www.sitemaps.org/schemas/sitemap/0.9}loc")]
    assert locs[0] == "http://blog.test/"
    assert sorted(locs[1:]) == [
        "http://blog.test/articles/first-piece",
        "http://blog.test/articles/second-piece",
    ]
    robots = client.get("/robots.txt")
    assert robots.mimetype == "text/plain"
    assert "Sitemap: http://blog.test/sitemap.xml" in robots.get_data(as_text=True)
    assert "Disallow: /studio/" in robots.get_data(as_text=True)


SITEMAP = "{http://www.sitemaps.org/schemas/sitemap/0.9}"


def test_a_blog_past_one_sitemap_page_gets_an_index_whose_pages_list_every_article(
    client, make_article, monkeypatch
):
    # Before, /sitemap.xml stopped at its first 50,000 articles: older ones were in no sitemap.
    from blog import public

    monkeypatch.setattr(public, "SITEMAP_PAGE", 2)
    for n in range(5):
        make_article(f"Piece {n}", published_at=datetime(2026, 1, 5 - n, tzinfo=UTC))
    make_article("Not yet", status=Status.DRAFT)

    index = ET.fromstring(client.get("/sitemap.xml").data)
    assert index.tag == f"{SITEMAP}sitemapindex"
    pages = [el.text for el in index.iter(f"{SITEMAP}loc")]
    assert pages == [f"http://blog.test/sitemap-{n}.xml" for n in (1, 2, 3)]

    listed = []
    for page in pages:
        response = client.get(page.removeprefix("http://blog.test"))
        assert response.status_code == 200
        assert response.headers["Content-Type"] == "application/xml; charset=utf-8"
        root = ET.fromstring(response.data)
        assert root.tag == f"{SITEMAP}urlset"
        listed += [el.text for el in root.iter(f"{SITEMAP}loc")]
    # Oldest first, so a page's contents stay put as new articles arrive on the last one.
    assert listed == ["http://blog.test/"] + [
        f"http://blog.test/articles/piece-{n}" for n in (4, 3, 2, 1, 0)
    ]
    assert client.get("/sitemap-4.xml").status_code == 404
    assert client.get("/sitemap-0.xml").status_code == 404


def test_healthz(client):
    response = client.get("/healthz")
    assert response.status_code == 200 and response.json["database"] == "ok"


@pytest.mark.parametrize("path", ["/", "/articles/a-page-to-check", "/nope"])
def test_security_headers_on_every_response(client, make_article, path):
    make_article("A page to check")
    headers = client.get(path).headers
    csp = headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp.split("script-src")[1]
    assert "object-src 'none'" in csp and "frame-ancestors 'none'" in csp
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Referrer-Policy"] == "strict-origin-when-cross-origin"


def test_pages_have_no_inline_scripts_or_handlers(client, make_article):
    make_article("A page to check", "## A heading\n\n```python\nprint(1)\n```\n")
    for path in ("/", "/articles/a-page-to-check", "/login"):
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


@pytest.mark.parametrize("page", [1_844_674_407_370_957, 2**63 - 1])
def test_a_sitemap_page_past_any_offset_the_database_takes_is_404(client, page):
    """The page number fits the database; (page - 1) x 5,000, the offset, does not."""
    assert client.get(f"/sitemap-{page}.xml").status_code == 404
    assert client.head(f"/sitemap-{page}.xml").status_code == 404


def test_sitemap_is_rebuilt_when_an_article_is_published(client, make_article):
    before = client.get("/sitemap.xml").get_data(as_text=True)
    assert client.get("/sitemap.xml").get_data(as_text=True) == before
    make_article("Fresh off the press")
    after = client.get("/sitemap.xml").get_data(as_text=True)
    assert "/articles/fresh-off-the-press" in after and after != before


def test_chip_counts_are_exact_past_the_search_caps(app, client, make_article, monkeypatch):
    """The chips once stopped counting at a cap and showed a wrong number; now exact or none."""
    import blog.search.query as search

    for n, category in enumerate(["Backend", "Backend", "Backend", "Database", "Security"]):
        make_article(f"Production notes {n}", category=category)
    monkeypatch.setattr(search, "COUNT_CAP", 2)
    plain = parse(client.get("/"))
    chips = {
        a.contents[0].strip(): a.select_one(".chip-count")
        for a in plain.select("nav[aria-label=Categories] a")
    }
    assert chips["All"].get_text() == "5" and chips["Backend"].get_text() == "3"
    assert plain.select_one("#result-count").get_text(strip=True) == "2+ articles"
    searched = parse(client.get("/?q=production"))  # five matches: past the chips' cap
    assert searched.select("nav[aria-label=Categories] .chip-count") == []


def test_a_search_past_the_count_cap_shows_chips_without_numbers(client, make_article, monkeypatch):
    """Counting a broad search's chips past the total's cap only said "no numbers" at a cost: the
    chips and the total now stop together, so "N+" and numberless chips go together."""
    import blog.search.query as search

    for n, category in enumerate(["Backend", "Backend", "Database", "Security"]):
        make_article(f"Quokka notes {n}", category=category)
    monkeypatch.setattr(search, "COUNT_CAP", 3)
    past = parse(client.get("/?q=quokka"))  # four matches
    assert past.select_one("#result-count").get_text(strip=True).startswith("3+ articles")
    assert past.select("nav[aria-label=Categories] .chip-count") == []
    monkeypatch.setattr(search, "COUNT_CAP", 4)
    within = parse(client.get("/?q=quokka"))
    counts = {
        a.contents[0].strip(): a.select_one(".chip-count").get_text()
        for a in within.select("nav[aria-label=Categories] a")
    }
    assert counts["All"] == "4" and counts["Backend"] == "2" and counts["Security"] == "1"
    assert within.select_one("#result-count").get_text(strip=True).startswith("4 articles")


def test_a_page_past_the_last_names_the_page_it_shows_as_canonical(client):
    # The demo blog has one page of articles: page 999 shows page 1, whose address is /.
    soup = parse(client.get("/?page=999&category=database"))
    assert soup.select_one("link[rel=canonical]")["href"] == "http://blog.test/?category=database"


def test_a_category_only_drafts_use_is_not_shown_to_readers(client, make_article):
    # Any author (or API token) can name a category in a draft; until an admin approves an
    # article in it, the name is unreviewed text and stays off the public pages.
    make_article("Draft", category="Visit evil.example for FREE crypto", status=Status.DRAFT)
    home = client.get("/").get_data(as_text=True)
    assert "evil.example" not in home
    filtered = client.get("/?category=visit-evil-example-for-free-crypto")
    assert "evil.example" not in filtered.get_data(as_text=True)
    make_article("Approved", category="Visit evil.example for FREE crypto")
    assert "evil.example" in client.get("/").get_data(as_text=True)


def test_tag_and_category_names_are_spelled_as_the_approved_text(client, make_article):
    # Slugs drop case and symbols, so this draft's names share the slugs "kafka" and
    # "streaming" and it creates those rows first; the approved article must not wear them.
    make_article(
        "Never approved",
        category="STREAMING ⚠⚠⚠",
        tags=["kafka ☠ !!!"],
        status=Status.DRAFT,
    )
    make_article("Kafka streams", category="Streaming", tags=["Kafka"])
    pages = [client.get(url).get_data(as_text=True) for url in ("/", "/articles/kafka-streams")]
    pages.append(client.get("/feed.xml").get_data(as_text=True))
    for page in pages:
        assert "⚠" not in page and "☠" not in page and "STREAMING" not in page
    article = parse(client.get("/articles/kafka-streams"))
    assert "Kafka" in [a.get_text(strip=True) for a in article.select("a[href*='tag=kafka']")]
    assert "Streaming" in client.get("/?category=streaming").get_data(as_text=True)


def test_names_that_mean_different_things_are_different_categories_and_tags(client, make_article):
    """Slugs once dropped + and # and letters without an ASCII form: C++ and C# were one."""
    terms = {"templates": "C++", "records": "C#", "pointers": "C", "indexes": "数据库"}
    for slug, term in terms.items():
        make_article(slug.title(), category=term, tags=[term])
    for slug, term in terms.items():
        page = parse(client.get(f"/articles/{slug}"))
        assert page.select_one(".post-header .eyebrow").get_text(strip=True) == term
        assert [a.get_text(strip=True) for a in page.select(".post-header .tags a")] == [term]
    for category, title in (
        ("c-sharp", "Records"),
        ("c-plus-plus", "Templates"),
        ("数据库", "Indexes"),
    ):
        listed = parse(client.get("/", query_string={"category": category})).select("h2, h3")
        assert [
            h.get_text(strip=True)
            for h in listed
            if h.get_text(strip=True) in {t.title() for t in terms}
        ] == [title]
