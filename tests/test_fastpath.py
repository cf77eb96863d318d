"""The fast path: a repeat anonymous visit gets Flask's own shared answer, without entering Flask.

What it must never do is answer a request Flask would have answered differently; the page
cache's invalidation tests (tests/test_pagecache.py) run through it too.
"""

from __future__ import annotations

import gzip
from collections.abc import Iterator

import brotli
import pytest
from flask import Flask, request_started

from blog import pagecache
from blog.extensions import db
from blog.fastpath import FastPath

from .conftest import AUTHOR, _make_app, login


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
    without_x_cache = [(k, v) for k, v in first.headers.items() if k != "X-Cache"]
    assert without_x_cache == [(k, v) for k, v in second.headers.items() if k != "X-Cache"]
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


def test_a_cache_outage_costs_speed_not_the_page(cached_app, entered, monkeypatch):
    reader = cached_app.test_client()
    reader.get("/")

    def unreachable(*args: object) -> None:
        raise ConnectionError("redis is down")

    monkeypatch.setattr(pagecache, "known_public_state", unreachable)
    assert reader.get("/").status_code == 200
    assert len(entered) == 2


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


def _pages(environ, start_response):  # noqa: ANN001
    """A tiny app that shares every page: its body is the path, 1 kB long."""
    environ[pagecache.SHARED] = True
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [environ["PATH_INFO"].encode().ljust(1000)]


def call(app: FastPath, path: str) -> bytes:
    environ = {"REQUEST_METHOD": "GET", "PATH_INFO": path}
    return b"".join(app(environ, lambda status, headers, exc_info=None: None))


def test_memory_stays_within_its_limit_dropping_the_least_recently_used():
    fast = FastPath(_pages, lambda: ("generation", None), limit=10_000)
    for n in range(50):
        call(fast, f"/{n}")
    assert fast.size <= 10_000
    assert len(fast.answers) < 10
    assert ("", "", "", "/49", "", "", "", "") in fast.answers
    assert ("", "", "", "/0", "", "", "", "") not in fast.answers


def test_an_answer_from_before_a_public_change_is_never_replayed():
    state = ["one"]
    bodies = iter([b"old", b"new"])

    def page(environ, start_response):  # noqa: ANN001
        environ[pagecache.SHARED] = True
        start_response("200 OK", [])
        return [next(bodies)]

    fast = FastPath(page, lambda: (state[0], None), limit=10_000)
    assert call(fast, "/") == b"old"
    assert call(fast, "/") == b"old"
    state[0] = "two"
    assert call(fast, "/") == b"new"
