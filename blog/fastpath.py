"""Repeat visits by anonymous readers, answered from this process's memory before Flask runs.

The page cache (blog/pagecache.py) spares readers the database, but a hit still goes through
the whole Flask stack: routing, the session and login machinery, key building, three cache
reads, compression and the security headers, about 2.6 ms of CPU against 0.4 ms for a bare
"hello". Under a crowd that is the difference between a site that keeps up and one that queues.

This WSGI layer sits in front of Flask and keeps, per process, the finished answers (status,
every header, the compressed body) that Flask itself labelled shareable (pagecache marks the
WSGI environ). A later request that would get the very same answer receives those bytes
without entering Flask. It decides nothing about sharing: it only replays what pagecache chose
to share, to requests that cannot differ from the one that produced it:

- a GET with no cookie and no Authorization (anonymous, no flash waiting, no remember cookie),
  and no conditional or range header (Flask answers those: 304s and 206s are not replayed);
- the same scheme, host, path, query string, HX-Request, HX-History-Restore-Request and
  Accept-Encoding (which chose the compression), read after ProxyFix;
- the same public state: the generation and next scheduled time that pagecache keeps in the
  shared cache, read at every request (one Redis MGET, or two small files), so a publish on any
  server, or a scheduled article's time passing (`clock.now()`), retires the answers at once.

Answers live in a small LRU of bytes per process; nothing here is needed by another server.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable
from typing import Any, NamedTuple

from flask import Flask

from . import clock, pagecache
from .extensions import cache

# Request headers that make an answer this layer must not replay (Flask handles them).
PASS_THROUGH = (
    "HTTP_COOKIE",
    "HTTP_AUTHORIZATION",
    "HTTP_IF_NONE_MATCH",
    "HTTP_IF_MODIFIED_SINCE",
    "HTTP_IF_MATCH",
    "HTTP_IF_UNMODIFIED_SINCE",
    "HTTP_IF_RANGE",
    "HTTP_RANGE",
)

StartResponse = Callable[..., Any]
WSGIApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]


class Answer(NamedTuple):
    state: tuple[str, Any]
    status: str
    headers: list[tuple[str, str]]
    body: bytes


class FastPath:
    """Replay shared pages to anonymous readers from memory; hand everything else to Flask."""

    def __init__(self, wsgi_app: WSGIApp, state: Callable[[], tuple[str, Any] | None], limit: int):
        self.wsgi_app = wsgi_app
        self.state = state
        self.limit = limit
        self.answers: OrderedDict[tuple[str, ...], Answer] = OrderedDict()
        self.size = 0
        self.lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        if environ.get("REQUEST_METHOD") != "GET" or any(h in environ for h in PASS_THROUGH):
            return self.wsgi_app(environ, start_response)
        state = self.state()
        if state is None:  # no cache, an outage, or a scheduled time just passed: Flask decides
            return self.wsgi_app(environ, start_response)
        key = (
            environ.get("wsgi.url_scheme", ""),
            environ.get("HTTP_HOST", ""),
            environ.get("SCRIPT_NAME", ""),
            environ.get("PATH_INFO", ""),
            environ.get("QUERY_STRING", ""),
            environ.get("HTTP_HX_REQUEST", ""),
            environ.get("HTTP_HX_HISTORY_RESTORE_REQUEST", ""),
            environ.get("HTTP_ACCEPT_ENCODING", ""),
        )
        answer = self._get(key, state)
        if answer is not None:
            start_response(answer.status, list(answer.headers))
            return [answer.body]
        return self._answer_and_keep(environ, start_response, key, state)

    def _get(self, key: tuple[str, ...], state: tuple[str, Any]) -> Answer | None:
        with self.lock:
            answer = self.answers.get(key)
            if answer is None:
                return None
            if answer.state != state:  # rendered before the last public change: retire it
                self._drop(key)
                return None
            self.answers.move_to_end(key)
            return answer

    def _answer_and_keep(
        self,
        environ: dict[str, Any],
        start_response: StartResponse,
        key: tuple[str, ...],
        state: tuple[str, Any],
    ) -> Iterable[bytes]:
        """Let Flask answer; keep the answer if pagecache shared it."""
        said: list[Any] = []

        def remember(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            said[:] = [status, headers]
            return start_response(status, headers, exc_info)

        body_parts = self.wsgi_app(environ, remember)
        if not (environ.get(pagecache.SHARED) and said and said[0].startswith("200")):
            return body_parts
        try:
            body = b"".join(body_parts)
        finally:
            close = getattr(body_parts, "close", None)
            if close is not None:
                close()
        headers = [(k, "HIT" if k == "X-Cache" else v) for k, v in said[1]]
        self._keep(key, Answer(state, said[0], headers, body))
        return [body]

    def _keep(self, key: tuple[str, ...], answer: Answer) -> None:
        cost = len(answer.body) + sum(len(k) + len(v) for k, v in answer.headers) + 200
        if cost > self.limit // 8:
            return  # one huge page (a sitemap) would push out hundreds of small ones
        with self.lock:
            self._drop(key)
            self.answers[key] = answer
            self.size += cost
            while self.size > self.limit:
                oldest = next(iter(self.answers))
                self._drop(oldest)

    def _drop(self, key: tuple[str, ...]) -> None:
        answer = self.answers.pop(key, None)
        if answer is not None:
            self.size -= len(answer.body) + sum(len(k) + len(v) for k, v in answer.headers) + 200


def install(app: Flask) -> None:
    """Put the fast path in front of Flask when a page cache is configured (before ProxyFix)."""
    limit = app.config["PAGE_CACHE_MEMORY_BYTES"]
    if not app.extensions["pagecache"]["enabled"] or not limit:
        return
    with app.app_context():
        store = cache.cache  # the backend itself: reading it needs no app context per request

    def state() -> tuple[str, Any] | None:
        try:
            return pagecache.known_public_state(store, clock.now())
        except Exception:  # an unreachable Redis: Flask renders, and says so in its log
            return None

    app.wsgi_app = FastPath(app.wsgi_app, state, limit)  # type: ignore[method-assign]
