"""The fast path: a repeat anonymous visit gets Flask's own shared answer, without entering Flask.

What it must never do is answer a request Flask would have answered differently; the page
cache's invalidation tests (tests/test_pagecache.py) run through it too.
"""

from __future__ import annotations

import gzip
import threading
import tracemalloc
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import brotli
import pytest
from cachelib import SimpleCache
from flask import Flask, request_started, template_rendered
from werkzeug.http import http_date
from werkzeug.test import EnvironBuilder, run_wsgi_app

from blog import pagecache
from blog.extensions import db
from blog.fastpath import FastPath, PublicState

from .conftest import ADMIN, AUTHOR, _make_app, login, parse


@pytest.fixture
def entered(cached_app: Flask) -> Iterator[list[str]]:
    """The paths of the requests that went through Flask (the fast path sends no signal).

    After one shared page, so that the public state exists: until a request through Flask has
    worked it out, the fast path cannot know which answers are current and keeps none.
    """
    assert cached_app.test_client().get("/robots.txt").status_code == 200
    paths: list[str] = []

    def record(sender: Flask, **extra: object) -> None:
        from flask import request

        paths.append(request.full_path)

    request_started.connect(record, cached_app)
    yield paths
    request_started.disconnect(record, cached_app)


def test_a_repeat_visit_gets_flasks_answer_without_entering_flask(cached_app, entered):
    reader = cached_app.test_client()
    first = reader.get("/", headers={"Accept-Encoding": "br"})
    second = reader.get("/", headers={"Accept-Encoding": "br"})
    assert len(entered) == 1
    assert second.status_code == 200 and second.data == first.data
    assert second.headers["X-Cache"] == "HIT"
    # The same headers, but for X-Cache and Date (each answer is dated when it is sent).
    same = [(k, v) for k, v in first.headers.items() if k not in ("X-Cache", "Date")]
    assert same == [(k, v) for k, v in second.headers.items() if k not in ("X-Cache", "Date")]
    assert "Date" in second.headers
    assert "Content-Security-Policy" in second.headers


@pytest.mark.parametrize(
    "headers",
    [
        {"Authorization": "Bearer x"},
        {"If-None-Match": '"nothing"'},
        {"Range": "bytes=0-10"},
    ],
)
def test_requests_that_may_differ_go_through_flask(cached_app, entered, headers):
    reader = cached_app.test_client()
    reader.get("/")
    reader.get("/", headers=headers)
    reader.head("/")
    assert len(entered) == 3


def test_each_encoding_and_fragment_gets_its_own_answer(cached_app, entered):
    reader = cached_app.test_client()
    variants = [
        {"Accept-Encoding": "gzip"},
        {"Accept-Encoding": "br"},
        {},
        {"HX-Request": "true"},
    ]
    answers = [reader.get("/?q=postgresql", headers=h) for h in variants]
    again = [reader.get("/?q=postgresql", headers=h) for h in variants]
    assert len(entered) == len(variants)
    assert [a.data for a in answers] == [a.data for a in again]
    html = answers[2].data
    assert gzip.decompress(answers[0].data) == html
    assert brotli.decompress(answers[1].data) == html
    assert b"<html" not in answers[3].data and b"<html" in html


def test_a_link_with_tracking_parameters_is_answered_without_entering_flask(cached_app, entered):
    reader = cached_app.test_client()
    first = reader.get("/?q=postgresql")
    for path in (
        "/?q=postgresql&fbclid=A1",
        "/?fbclid=B2&q=postgresql",
        "/?utm_source=x&q=postgresql",
    ):
        assert reader.get(path).data == first.data
    assert len(entered) == 1


def test_a_visitor_with_any_cookie_goes_through_flask(cached_app, entered):
    reader = cached_app.test_client()
    reader.get("/")
    reader.set_cookie("theme", "dark")
    reader.get("/")
    assert len(entered) == 2


def test_a_signed_in_author_never_gets_a_replayed_page(cached_app):
    cached_app.test_client().get("/")
    author = cached_app.test_client()
    login(author, AUTHOR)
    assert author.get("/").headers["Cache-Control"] == "no-store"
    assert b"Sign out" in author.get("/").data


def test_a_cache_outage_costs_speed_not_the_page(cached_app, entered, monkeypatch, clock):
    reader = cached_app.test_client()
    reader.get("/")

    def unreachable(*args: object) -> None:
        raise ConnectionError("redis is down")

    monkeypatch.setattr(pagecache, "read_public_state", unreachable)
    clock(datetime.now(UTC) + timedelta(seconds=2))  # past the time the last read is trusted
    assert reader.get("/").status_code == 200
    assert len(entered) == 2


def _records(store: SimpleCache, generation: str, at: datetime, due: datetime | None) -> None:
    """Write the public state as pagecache does (what another server would write)."""
    store.set(pagecache.GENERATION, generation)
    store.set(pagecache.NEXT_DUE, (generation, at, due))


def test_another_servers_change_is_seen_within_a_second_and_this_ones_at_once(clock, monkeypatch):
    now = datetime(2026, 3, 1, 12, tzinfo=UTC)
    clock(now)
    store = SimpleCache()
    _records(store, "one", now, None)
    state = PublicState(store, seconds=1)
    assert state() == ("one", None)
    _records(store, "two", now, None)  # another server's publish
    clock(now + timedelta(milliseconds=999))
    assert state() == ("one", None)
    clock(now + timedelta(seconds=1))
    assert state() == ("two", None)
    _records(store, "three", now, None)
    monkeypatch.setattr(pagecache, "turnovers", pagecache.turnovers + 1)  # this process's publish
    assert state() == ("three", None)


def test_a_scheduled_time_passing_is_seen_at_once(clock):
    now = datetime(2026, 3, 1, 12, tzinfo=UTC)
    due = now + timedelta(milliseconds=200)
    clock(now)
    store = SimpleCache()
    _records(store, "one", now, due)
    state = PublicState(store, seconds=1)
    assert state() == ("one", due)
    clock(due)
    assert state() is None  # only Flask, which may query, can say what is public now
    _records(store, "one", due, None)  # as Flask's request writes it
    assert state() == ("one", None)


def test_behind_a_proxy_the_scheme_the_client_used_picks_the_answer(tmp_path, template_databases):
    app = _make_app(
        tmp_path, template_databases["demo"], CACHE_TYPE="SimpleCache", PROXY_FIX_X_FOR=1
    )
    reader = app.test_client()
    for _ in range(2):
        secure = reader.get("/", headers={"X-Forwarded-Proto": "https"})
        plain = reader.get("/")
        assert "Strict-Transport-Security" in secure.headers
        assert "Strict-Transport-Security" not in plain.headers
    with app.app_context():
        db.engine.dispose()


PUBLIC = ("Cache-Control", "public, max-age=60")


def _pages(environ, start_response):  # noqa: ANN001
    """A tiny app that shares every page: its body is the path, 1 kB long."""
    environ[pagecache.SHARED] = True
    start_response("200 OK", [("Content-Type", "text/plain"), PUBLIC])
    return [environ["PATH_INFO"].encode().ljust(1000)]


def call(app: FastPath, path: str) -> bytes:
    environ = {"REQUEST_METHOD": "GET", "PATH_INFO": path}
    return b"".join(app(environ, lambda status, headers, exc_info=None: None))


def test_memory_stays_within_its_limit_dropping_the_least_recently_used():
    fast = FastPath(_pages, lambda: ("generation", None), limit=30_000, max_age=60)
    for n in range(50):
        call(fast, f"/{n}")
    assert fast.size <= 30_000
    assert 5 < len(fast.answers) < 25
    paths = [key[3] for key in fast.answers]
    assert "/49" in paths and "/0" not in paths


def test_an_answer_from_before_a_public_change_is_never_replayed():
    state = ["one"]
    bodies = iter([b"old", b"new"])

    def page(environ, start_response):  # noqa: ANN001
        environ[pagecache.SHARED] = True
        start_response("200 OK", [PUBLIC])
        return [next(bodies)]

    fast = FastPath(page, lambda: (state[0], None), limit=10_000, max_age=60)
    assert call(fast, "/") == b"old"
    assert call(fast, "/") == b"old"
    state[0] = "two"
    assert call(fast, "/") == b"new"


# -- found in review: each failed before its fix in blog/fastpath.py ---------------------------


def held_bytes(fast: FastPath) -> int:
    """What the kept answers really occupy: the request that names each, and the answer."""
    return sum(
        sum(map(len, key)) + len(a.body) + sum(len(k) + len(v) for k, v in a.headers)
        for key, a in fast.answers.items()
    )


def test_long_urls_and_headers_count_against_the_memory_limit():
    # Every distinct query string, Host or Accept-Encoding is a new answer: a crawler (or an
    # attacker) sending 8 kB headers must not make the bound a tenth of what is held.
    fast = FastPath(_pages, lambda: ("generation", None), limit=100_000, max_age=60)
    for n in range(100):
        environ = {
            "REQUEST_METHOD": "GET",
            "PATH_INFO": "/robots.txt",
            "QUERY_STRING": f"n={n}&pad=" + "x" * 4000,
            "HTTP_ACCEPT_ENCODING": "gzip, " + "y" * 4000,
        }
        fast(environ, lambda status, headers, exc_info=None: None)
    assert fast.answers
    assert held_bytes(fast) <= 100_000


def _take_down_while_redis_blinks(app, monkeypatch) -> None:  # noqa: ANN001
    """Take the test article down while the new generation cannot be written."""
    from .test_pagecache import SLUG, article_id

    def unreachable() -> None:
        raise ConnectionError("redis is down")

    monkeypatch.setattr(pagecache, "new_generation", unreachable)
    admin = app.test_client()
    assert login(admin, ADMIN).status_code == 302
    taken = admin.post(f"/review/{article_id(app, SLUG)}/take-down", data={"reason": "x"})
    assert taken.status_code == 302


def test_a_turnover_lost_to_a_cache_outage_is_not_replayed_past_the_pages_max_age(
    cached_app, clock, monkeypatch
):
    # A take-down commits, but the new generation cannot be written (Redis blinked): the page
    # cache then serves the old page until its own timeout; the fast path must not keep it for
    # ever after, only as long as the answer itself lets any shared cache keep it (max-age).
    from blog.extensions import cache

    from .test_pagecache import SLUG

    now = datetime.now(UTC)
    clock(now)
    reader = cached_app.test_client()
    for _ in range(2):
        assert reader.get(f"/articles/{SLUG}").status_code == 200

    _take_down_while_redis_blinks(cached_app, monkeypatch)
    with cached_app.app_context():  # the stored pages' own timeout (CACHE_DEFAULT_TIMEOUT) ends
        backend = cache.cache
        pages = [key for key in backend._cache if key.startswith("page:")]
        assert pages
        for key in pages:
            backend.delete(key)
    clock(now + timedelta(seconds=cached_app.config["PAGE_CACHE_MAX_AGE"] + 1))
    assert reader.get(f"/articles/{SLUG}").status_code == 410


def test_a_turnover_lost_to_a_cache_outage_is_made_once_the_cache_answers(cached_app, monkeypatch):
    # The take-down's new generation could not be written; the process that made it owes it,
    # and makes it before it reads the cache again, so no server keeps the old page.
    from blog.extensions import cache

    from .test_pagecache import SLUG

    monkeypatch.setattr(pagecache.Outage, "PAUSE", 0.0)  # the cache answers again at once
    reader = cached_app.test_client()
    for _ in range(2):
        assert reader.get(f"/articles/{SLUG}").status_code == 200
    with cached_app.app_context():
        before = cache.get(pagecache.GENERATION)
    made = pagecache.new_generation
    _take_down_while_redis_blinks(cached_app, monkeypatch)
    monkeypatch.setattr(pagecache, "new_generation", made)
    assert reader.get(f"/articles/{SLUG}").status_code == 410
    with cached_app.app_context():
        assert cache.get(pagecache.GENERATION) != before


def test_a_request_without_a_host_header_gets_links_to_the_server_it_reached(
    tmp_path, template_databases
):
    # HTTP/1.0 sends no Host: Flask then builds links on SERVER_NAME:SERVER_PORT (one process
    # may listen on several addresses), so the fast path must tell those requests apart too.
    app = _make_app(
        tmp_path,
        template_databases["demo"],
        CACHE_TYPE="SimpleCache",
        SITE_URL=None,
        TRUSTED_HOSTS=None,
    )

    def robots(base_url: str) -> str:
        environ = EnvironBuilder(path="/robots.txt", base_url=base_url).get_environ()
        del environ["HTTP_HOST"]
        body, status, _ = run_wsgi_app(app, environ, buffered=True)
        assert status.startswith("200")
        return b"".join(body).decode()

    for _ in range(2):
        assert "Sitemap: http://one.test:8000/sitemap.xml" in robots("http://one.test:8000/")
    assert "Sitemap: http://two.test:8001/sitemap.xml" in robots("http://two.test:8001/")
    with app.app_context():
        db.engine.dispose()


def test_an_answer_that_sets_a_cookie_or_is_not_public_is_never_replayed():
    # pagecache labels an answer shared half-way through Flask's response hooks; a hook that
    # runs after it (the session, Flask-Login's remember cookie) could still add a cookie or
    # make the answer private. The fast path replays only what the final answer allows.
    calls: list[str] = []

    def page(environ, start_response):  # noqa: ANN001
        environ[pagecache.SHARED] = True
        calls.append(environ["PATH_INFO"])
        headers = {
            "/cookie": [("Cache-Control", "public, max-age=60"), ("Set-Cookie", "session=x")],
            "/private": [("Cache-Control", "private")],
            "/public": [("Cache-Control", "public, max-age=60")],
        }[environ["PATH_INFO"]]
        start_response("200 OK", headers)
        return [b"page"]

    fast = FastPath(page, lambda: ("generation", None), limit=10_000, max_age=60)
    for path in ("/cookie", "/private", "/public") * 2:
        call(fast, path)
    assert calls == ["/cookie", "/private", "/public", "/cookie", "/private"]


def test_a_replayed_answer_is_dated_when_it_is_sent():
    # Flask dates each answer (make_conditional adds Date); a replay must not say the time the
    # page was first rendered, or caches downstream count it as that much older.
    moment = [1_800_000_000.0]

    def page(environ, start_response):  # noqa: ANN001
        environ[pagecache.SHARED] = True
        start_response("200 OK", [PUBLIC, ("Date", http_date(moment[0]))])
        return [b"page"]

    fast = FastPath(
        page, lambda: ("generation", None), limit=10_000, max_age=60, now=lambda: moment[0]
    )
    said: list[tuple[str, str]] = []
    environ = {"REQUEST_METHOD": "GET", "PATH_INFO": "/"}
    fast(dict(environ), lambda status, headers, exc_info=None: None)
    moment[0] += 30
    fast(dict(environ), lambda status, headers, exc_info=None: said.extend(headers))
    assert [v for k, v in said if k == "Date"] == [http_date(moment[0])]


def test_the_memory_limit_holds_for_many_small_answers():
    # robots.txt is 150 bytes, its headers 600: Python's own bookkeeping of each string and
    # tuple weighs as much again, and a crawler varying the query string fills memory with them.
    headers = [
        ("Content-Type", "text/plain; charset=utf-8"),
        ("Cache-Control", "public, max-age=60, stale-while-revalidate=600"),
        ("Vary", "HX-Request, HX-History-Restore-Request, Cookie, Accept-Encoding"),
        ("Content-Security-Policy", "default-src 'self'; frame-ancestors 'none'"),
        *[(f"X-Header-{n}", "value") for n in range(8)],
    ]

    def robots(environ, start_response):  # noqa: ANN001
        environ[pagecache.SHARED] = True
        # New strings for every answer, as Flask makes them.
        start_response("200 OK", [((k + "-")[:-1], (v + "-")[:-1]) for k, v in headers])
        return [b"x" * 150]

    limit = 1_000_000
    fast = FastPath(robots, lambda: ("generation", None), limit=limit, max_age=60)
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for n in range(3000):
            environ = {
                "REQUEST_METHOD": "GET",
                "PATH_INFO": "/robots.txt",
                "QUERY_STRING": f"n={n}",
            }
            fast(environ, lambda status, headers, exc_info=None: None)
        held = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert len(fast.answers) > 100
    assert held <= limit * 1.1


def test_a_take_down_during_a_readers_render_is_not_replayed_to_the_next_reader(cached_app):
    # The page is rendered from the database before the take-down commits, and kept after it:
    # it must be kept under the state read before the render, which the take-down retires.
    from .test_pagecache import SLUG, article_id

    admin = cached_app.test_client()
    assert login(admin, ADMIN).status_code == 302
    path = f"/review/{article_id(cached_app, SLUG)}/take-down"
    taken: list[int] = []

    def take_down() -> None:
        taken.append(admin.post(path, data={"reason": "x"}).status_code)

    def take_down_once(sender: Flask, template, context) -> None:  # noqa: ANN001
        if template.name == "public/article.html" and not taken:
            # Another request, as from another thread of this server: its own app context.
            other = threading.Thread(target=take_down)
            other.start()
            other.join()

    reader = cached_app.test_client()
    reader.get("/robots.txt")  # the public state exists: the next answer may be kept
    template_rendered.connect(take_down_once, cached_app)
    try:
        assert reader.get(f"/articles/{SLUG}").status_code == 200  # rendered before the commit
    finally:
        template_rendered.disconnect(take_down_once, cached_app)
    assert taken == [302]
    reader.get("/robots.txt")  # the new state is worked out: the fast path may replay again
    assert reader.get(f"/articles/{SLUG}").status_code == 410


@pytest.mark.parametrize("refusal", ["br;q=0", "br;q=0, gzip;q=0", "zstd;q=0, br;q=0, identity"])
def test_a_client_refusing_the_codings_gets_pages_and_files_uncompressed(cached_app, refusal):
    # q=0 means "cannot decode this" (RFC 9110 12.5.3); Flask-Compress 1.25 still picks such a
    # coding when nothing else it knows is listed, so the page would not decode at all.
    reader = cached_app.test_client()
    css = parse(reader.get("/")).select_one("link[rel=stylesheet]")["href"]
    for path in ("/", "/", css):  # the second page from the fast path
        with reader.get(path, headers={"Accept-Encoding": refusal}) as response:
            assert response.status_code == 200
            assert "Content-Encoding" not in response.headers
            assert "Accept-Encoding" in response.headers["Vary"]
            assert response.data.lstrip().startswith(
                (b"<!doctype html>", b"<!DOCTYPE html>", b"/*")
            )


def test_an_answer_is_replayed_only_within_its_max_age_on_a_clock_that_may_go_back():
    moment = [1_800_000_000.0]
    calls: list[str] = []

    def page(environ, start_response):  # noqa: ANN001
        environ[pagecache.SHARED] = True
        calls.append(environ["PATH_INFO"])
        start_response("200 OK", [PUBLIC])
        return [b"page"]

    fast = FastPath(page, lambda: ("generation", None), 10_000, max_age=60, now=lambda: moment[0])
    for step in (0, 59, -59, -1, 60):  # kept, replayed, replayed, before it was kept, aged out
        moment[0] += step
        call(fast, "/")
    assert len(calls) == 3
