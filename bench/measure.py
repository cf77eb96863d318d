"""The scenarios and the timing loop: requests through the Flask test client, in process."""

from __future__ import annotations

import gc
import statistics
import time
from dataclasses import dataclass, field, replace

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import text

from . import corpus


class BenchFailure(Exception):
    """A request did not answer 200: a bug in the app, not a slow result."""


@dataclass(frozen=True)
class Settings:
    """How long to measure each scenario: a time budget, bounded by repetition counts."""

    budget: float = 2.0
    min_reps: int = 5
    max_reps: int = 200
    warmup: int = 2
    floor_budget: float = 1.0
    floor_reps: int = 1000


@dataclass(frozen=True)
class Scenario:
    """One request to time, what it shows, and how to count the articles it touches."""

    name: str
    url: str
    what: str
    headers: dict[str, str] = field(default_factory=dict)
    # The URL as the report shows it, when the real one differs per corpus.
    shown: str = ""
    # SQL (with :now) counting the matching public articles, for the report.
    count_sql: str | None = None
    count_params: dict[str, object] = field(default_factory=dict)


@dataclass
class Timing:
    """The timed repetitions of one scenario, in seconds."""

    samples: list[float]
    matches: int | None = None

    @property
    def median(self) -> float:
        """Return the median time."""
        return statistics.median(self.samples)

    @property
    def p95(self) -> float:
        """Return the 95th percentile (interpolated: with few samples, near the slowest)."""
        if len(self.samples) < 2:
            return self.samples[0]
        return statistics.quantiles(self.samples, n=20, method="inclusive")[18]


FLOOR = Scenario("floor: /healthz", "/healthz", "SELECT 1 through the whole stack")
PUBLIC = "published_revision_id IS NOT NULL AND published_at <= :now"
# The FTS query runs once, as a list: joined instead, SQLite may probe it once per article.
SEARCH_COUNT = (
    "SELECT count(*) FROM articles WHERE id IN "
    f"(SELECT rowid FROM articles_fts WHERE articles_fts MATCH :match) AND {PUBLIC}"
)


def scenarios(app: Flask) -> list[Scenario]:
    """Name the requests to time; the article and the tag are picked from the corpus."""
    from blog.extensions import db
    from blog.public import SITEMAP_PAGE, sitemap_pages
    from blog.search import build_match

    with app.app_context():
        size = db.session.execute(text("SELECT max(id) FROM articles")).scalar_one()
        slug = db.session.execute(
            text("SELECT slug FROM articles WHERE id = :id"), {"id": size // 2 + 1}
        ).scalar_one()
        tag = db.session.execute(
            text(
                "SELECT tags.slug FROM article_tags JOIN tags ON tags.id = tag_id "
                "GROUP BY tags.id, tags.slug ORDER BY count(*) DESC, tags.id LIMIT 1"
            )
        ).scalar_one()
        last_page = sitemap_pages()
    common, rare = corpus.COMMON_WORD, corpus.vocabulary().rare_word

    def search(name: str, q: str, what: str, **extra: str) -> Scenario:
        """Describe a search, counting its matches as the app's own MATCH expression would."""
        url = f"/?q={q}" + "".join(f"&{key}={value}" for key, value in extra.items())
        sql, params = SEARCH_COUNT, {"match": build_match(q)}
        if "category" in extra:
            sql += " AND category_id = (SELECT id FROM categories WHERE slug = :category)"
            params["category"] = extra["category"]
        return Scenario(name, url, what, count_sql=sql, count_params=params)

    every = f"SELECT count(*) FROM articles WHERE {PUBLIC}"
    return [
        Scenario("home", "/", "first page of the list, no filter", count_sql=every),
        Scenario("home page 50", "/?page=50", "deep pagination (OFFSET 980)", count_sql=every),
        Scenario(
            "category devops",
            "/?category=devops",
            "one category chip",
            count_sql=every + " AND category_id = (SELECT id FROM categories WHERE slug='devops')",
        ),
        Scenario(
            "tag (most used)",
            f"/?tag={tag}",
            "the most used tag",
            count_sql=every + " AND EXISTS (SELECT 1 FROM article_tags JOIN tags ON tags.id ="
            " tag_id WHERE article_id = articles.id AND tags.slug = :tag)",
            count_params={"tag": tag},
        ),
        search(f"q={common}", common, "a word in most articles"),
        search(f"q={rare}", rare, "a word in under 1% of articles"),
        search("q=co", "co", "two letters typed: prefix query co*"),
        search("q=quer", "quer", "four letters typed: prefix query quer*"),
        search("q=kube", "kube", "four letters typed: kube* finds kubernetes"),
        Scenario(
            f"q={common} word",
            f"/?q={common}+",
            "the word typed whole (a space after it): no prefix",
            count_sql=SEARCH_COUNT,
            count_params={"match": build_match(f"{common} ")},
        ),
        search("q=a", "a", "one letter typed: the word 'a', in every article"),
        search(f"q={common} category=backend", common, "search in a category", category="backend"),
        Scenario(
            f"q={common} htmx fragment",
            f"/?q={common}",
            "live search as htmx sends it",
            headers={"HX-Request": "true"},
            count_sql=SEARCH_COUNT,
            count_params={"match": build_match(common)},
        ),
        Scenario(
            "article page",
            f"/articles/{slug}",
            "the middle article, with newer/older and related",
            shown="/articles/<middle one>",
        ),
        Scenario("feed.xml", "/feed.xml", "Atom feed, 20 full articles"),
        Scenario(
            "sitemap.xml",
            "/sitemap.xml",
            f"every article's URL; past {SITEMAP_PAGE:,}, the index of the pages that list them",
            count_sql=every,
        ),
        Scenario(
            "sitemap last page",
            f"/sitemap-{last_page}.xml",
            f"the sitemap's newest page: up to {SITEMAP_PAGE:,} URLs, the deepest OFFSET",
            shown="/sitemap-<last>.xml",
            count_sql=f"SELECT count(*) - {(last_page - 1) * SITEMAP_PAGE} FROM articles"
            f" WHERE {PUBLIC}",
        ),
    ]


def count_matches(app: Flask, scenario: Scenario) -> int | None:
    """Count the public articles a scenario's filters match, straight in SQL."""
    if scenario.count_sql is None:
        return None
    from blog.extensions import db

    with app.app_context():
        if db.engine.dialect.name != "sqlite":
            return None  # the counting SQL is SQLite's (FTS5); the SQLite run reports the counts

    params = {"now": corpus.sqlite_time(corpus.utc_now()), **scenario.count_params}
    with app.app_context():
        return db.session.execute(text(scenario.count_sql), params).scalar_one()


def _request(client: FlaskClient, scenario: Scenario, size: int) -> float:
    """Make one request and return how long it took; raise BenchFailure unless it is a 200."""
    started = time.perf_counter()
    try:
        response = client.get(scenario.url, headers=scenario.headers)
        body = response.get_data()
    except Exception as error:  # the test client re-raises the app's exceptions
        raise BenchFailure(
            f"GET {scenario.url} raised {type(error).__name__}: {error} "
            f"(corpus of {size:,} articles)"
        ) from error
    elapsed = time.perf_counter() - started
    response.close()
    if response.status_code != 200:
        raise BenchFailure(
            f"GET {scenario.url} answered {response.status_code}, not 200 "
            f"(corpus of {size:,} articles); body starts: {body[:300]!r}"
        )
    return elapsed


def measure(client: FlaskClient, scenario: Scenario, size: int, settings: Settings) -> Timing:
    """Time a scenario: warm up, then repeat until the budget is spent (within the bounds)."""
    for _ in range(settings.warmup):
        # One warm-up is enough for a slow request: its caches are warm, and time is short.
        if _request(client, scenario, size) > settings.budget / 4:
            break
    gc.collect()
    samples: list[float] = []
    deadline = time.perf_counter() + settings.budget
    while len(samples) < settings.max_reps and (
        len(samples) < settings.min_reps or time.perf_counter() < deadline
    ):
        samples.append(_request(client, scenario, size))
    return Timing(samples)


def floor(client: FlaskClient, size: int, settings: Settings) -> Timing:
    """Time the floor, /healthz, with its own (shorter) budget and more repetitions."""
    floor_settings = replace(settings, budget=settings.floor_budget, max_reps=settings.floor_reps)
    return measure(client, FLOOR, size, floor_settings)
