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
- the same scheme, host (the Host header, else the server's own name and port, as Flask
  does), path, query string (as pagecache keys it: no tracking parameters, names in order),
  HX-Request, HX-History-Restore-Request and Accept-Encoding (which chose the compression),
  read after ProxyFix;
- the same public state: the generation and next scheduled time that pagecache keeps in the
  shared cache (see PublicState: this process's own changes and a scheduled article's time
  passing retire the answers at once, another worker's or server's change within a second);
- within the answer's own max-age (PAGE_CACHE_MAX_AGE): what no hook sees (a turnover lost to a
  cache outage, a change made outside the app) is bounded here as the page cache bounds it.

Only answers whose final headers still say `public` and set no cookie are kept: pagecache
labels a page half-way through Flask's response hooks, and a later hook could change that.
Answers live in a small LRU of bytes per process, counted with the request line and headers
that name them; nothing here is needed by another server.
"""

from __future__ import annotations

import functools
import sys
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta
from typing import Any, NamedTuple

from flask import Flask
from werkzeug.datastructures import ResponseCacheControl
from werkzeug.http import http_date, parse_cache_control_header

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

# The Answer, its state tuple, the time and size, and the LRU's own link and table slot.
ENTRY_OVERHEAD = 400

StartResponse = Callable[..., Any]
WSGIApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]


class Answer(NamedTuple):
    state: tuple[str, Any]
    kept_at: float  # seconds, on the same clock as FastPath.now
    status: str
    headers: list[tuple[str, str]]
    body: bytes
    cost: int  # bytes held: the body, the headers and the key that names it


class FastPath:
    """Replay shared pages to anonymous readers from memory; hand everything else to Flask."""

    def __init__(
        self,
        wsgi_app: WSGIApp,
        state: Callable[[], tuple[str, Any] | None],
        limit: int,
        max_age: float,
        now: Callable[[], float] = time.time,
    ):
        self.wsgi_app = wsgi_app
        self.state = state
        self.limit = limit
        self.max_age = max_age
        self.now = now
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
            _host(environ),
            environ.get("SCRIPT_NAME", ""),
            environ.get("PATH_INFO", ""),
            pagecache.cache_query(environ.get("QUERY_STRING", "")),
            environ.get("HTTP_HX_REQUEST", ""),
            environ.get("HTTP_HX_HISTORY_RESTORE_REQUEST", ""),
            environ.get("HTTP_ACCEPT_ENCODING", ""),
        )
        now = self.now()
        answer = self._get(key, state, now)
        if answer is not None:
            # Flask dates each answer (make_conditional): a replay says when it is sent.
            date = _http_date(int(now))
            headers = [(k, date if k == "Date" else v) for k, v in answer.headers]
            start_response(answer.status, headers)
            return [answer.body]
        return self._answer_and_keep(environ, start_response, key, state, now)

    def _get(self, key: tuple[str, ...], state: tuple[str, Any], now: float) -> Answer | None:
        with self.lock:
            answer = self.answers.get(key)
            if answer is None:
                return None
            # Rendered before the last public change, or kept past its max-age (or the clock
            # went back): retire it.
            fresh = answer.kept_at <= now < answer.kept_at + self.max_age
            if answer.state != state or not fresh:
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
        now: float,
    ) -> Iterable[bytes]:
        """Let Flask answer; keep the answer if pagecache shared it and it is still public."""
        said: list[Any] = []

        def remember(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            said[:] = [status, headers]
            return start_response(status, headers, exc_info)

        body_parts = self.wsgi_app(environ, remember)
        shared = environ.get(pagecache.SHARED) and said and said[0].startswith("200")
        if not (shared and _still_public(said[1])):
            return body_parts
        try:
            body = b"".join(body_parts)
        finally:
            close = getattr(body_parts, "close", None)
            if close is not None:
                close()
        headers = [(k, "HIT" if k == "X-Cache" else v) for k, v in said[1]]
        cost = _held(key, headers, body)
        self._keep(key, Answer(state, now, said[0], headers, body, cost))
        return [body]

    def _keep(self, key: tuple[str, ...], answer: Answer) -> None:
        if answer.cost > self.limit // 8:
            return  # one huge page (a sitemap) would push out hundreds of small ones
        with self.lock:
            self._drop(key)
            self.answers[key] = answer
            self.size += answer.cost
            while self.size > self.limit:
                oldest = next(iter(self.answers))
                self._drop(oldest)

    def _drop(self, key: tuple[str, ...]) -> None:
        answer = self.answers.pop(key, None)
        if answer is not None:
            self.size -= answer.cost


def _held(key: tuple[str, ...], headers: list[tuple[str, str]], body: bytes) -> int:
    """Count the bytes an answer holds, Python's bookkeeping of each string and tuple included.

    The key counts too (a distinct long query string or header is a new entry each time), and
    a small page's headers weigh more than its body: counting only the text let robots.txt
    variants take four times the limit.
    """
    size = sys.getsizeof(body) + sys.getsizeof(key) + sys.getsizeof(headers) + ENTRY_OVERHEAD
    size += sum(map(sys.getsizeof, key))
    for pair in headers:
        size += sys.getsizeof(pair) + sys.getsizeof(pair[0]) + sys.getsizeof(pair[1])
    return size


@functools.lru_cache(maxsize=1)
def _http_date(second: int) -> str:
    """Spell a Date header once a second, not once a hit."""
    return http_date(second)


def _host(environ: dict[str, Any]) -> str:
    """Name the host Flask builds links on: the Host header, else the server's own address."""
    if "HTTP_HOST" in environ:
        return environ["HTTP_HOST"]
    return f"{environ.get('SERVER_NAME', '')}:{environ.get('SERVER_PORT', '')}"


def _still_public(headers: list[tuple[str, str]]) -> bool:
    """Say whether Flask's final headers still let any cache share this answer (no cookie)."""
    if any(name.lower() == "set-cookie" for name, _ in headers):
        return False
    value = ", ".join(v for name, v in headers if name.lower() == "cache-control")
    control = parse_cache_control_header(value, cls=ResponseCacheControl)
    return bool(control.public) and not control.private and not control.no_store


class PublicState:
    """The shared public state, as this process last read it, trusted for `seconds` at most.

    Reading the generation from the shared cache (two small files, or a Redis round trip) costs
    more than replaying a page, and under a crowd that read alone doubled the readers' p95. So
    it is kept for a moment: another worker's or server's change is seen within `seconds` (1 s;
    HTTP caches are allowed a minute), this process's own at once (pagecache counts its
    turnovers), and a scheduled article's time passing at once (the clock is checked on every
    request, and records that no longer hold are read again).
    """

    def __init__(self, store: Any, seconds: float) -> None:
        self.store = store
        self.period = timedelta(seconds=seconds)
        self.kept: tuple[tuple[Any, Any], datetime, int] | None = None  # records, read at, count

    def __call__(self) -> tuple[str, Any] | None:
        now = clock.now()
        kept = self.kept  # one read of the attribute: another thread may replace it
        if kept is not None:
            records, read_at, count = kept
            if count == pagecache.turnovers and read_at <= now < read_at + self.period:
                state = pagecache.public_state_from(records, now)
                if state is not None:
                    return state
        count = pagecache.turnovers  # before reading: a turnover meanwhile makes us read again
        records = pagecache.read_public_state(self.store)
        self.kept = (records, now, count)
        return pagecache.public_state_from(records, now)


def install(app: Flask) -> None:
    """Put the fast path in front of Flask when a page cache is configured (before ProxyFix)."""
    limit = app.config["PAGE_CACHE_MEMORY_BYTES"]
    max_age = app.config["PAGE_CACHE_MAX_AGE"]
    if not app.extensions["pagecache"]["enabled"] or not limit or max_age <= 0:
        return
    with app.app_context():
        store = cache.cache  # the backend itself: reading it needs no app context per request

    public_state = PublicState(store, app.config["PAGE_CACHE_STATE_SECONDS"])
    outage = app.extensions["pagecache"]["outage"]

    def state() -> tuple[str, Any] | None:
        if not outage.reachable() or outage.turnover_owed:  # Flask makes the turnover owed
            return None
        try:
            return public_state()
        except Exception:  # an unreachable Redis: Flask renders, and says so in its log
            outage.failed()
            return None

    def now() -> float:
        return clock.now().timestamp()  # the clock the tests fix, as for the public state

    app.wsgi_app = FastPath(app.wsgi_app, state, limit, max_age, now)  # type: ignore[method-assign]
