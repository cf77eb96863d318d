"""The shared page cache: public pages rendered once, then served to every anonymous reader.

The one place that decides whether a response may be shared, and that labels it for browsers,
CDNs and proxies (Cache-Control, ETag, Vary) and compresses it.

Keys. A page's key holds everything that changes the answer: the host and scheme (absolute
links follow them without SITE_URL), the path and the query string as the page reads it
(cache_query: no tracking parameters, names in order), HX-Request and
HX-History-Restore-Request (fragment or page), a fingerprint of this release (templates, code,
static files and the SITE_* settings), and the *public state*: a generation token plus the next
moment a scheduled article goes live.

Invalidation by generation, not by deleting keys: one publish changes the list under every
filter, the feed, the sitemap and the neighbours' links, and neither Redis nor files can delete
"everything under a prefix" cheaply. Every change to what readers see (articles.publish,
workflow.take_down, any flush that touches a public article, a category, an existing tag or a
person's name, any bulk UPDATE of articles) marks the session; after the commit, a new random
generation is written to the shared cache, so every server's next request misses. Random rather
than a counter: if the entry is evicted, a fresh token can never bring old pages back. Bumping
after the commit (not before) means no request can store the old database state under the new
generation.

Time. "Published" depends on the clock: a scheduled article goes live with no request changing
anything. The key therefore carries the next scheduled publish time; once it has passed, the
next request finds the following one, its key changes, and the list is rendered afresh.

Validators. A strong ETag of the uncompressed body; Flask-Compress gives each encoding its own
("abc:br"). No Last-Modified: a list loses articles (take-downs) and gains old-dated ones
(scheduled, re-approved), so no date says "unchanged since" truthfully; the ETag does.

Who shares. Only GET/HEAD of the public endpoints below, for a visitor who is not signed in
and has no flash message waiting; only 200 answers that set no cookie and embed no CSRF token.
Everything else on those endpoints is `no-store`, and never read from or written to the cache;
so is a page anywhere that embeds a CSRF token (any signed-in page, its error pages included).
"""

from __future__ import annotations

import hashlib
import logging
import secrets
import threading
import time
from collections import Counter, OrderedDict
from datetime import datetime
from itertools import chain
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

from flask import Flask, Response, current_app, g, has_app_context, request, session
from flask.sessions import SecureCookieSessionInterface, SessionMixin
from flask_login import current_user
from sqlalchemy import event, func, inspect, select
from sqlalchemy.orm import ORMExecuteState, Session

from . import clock
from .extensions import cache, compress, db
from .models import Article, Category, Tag, User

log = logging.getLogger(__name__)

# The pages every anonymous reader gets alike (public.healthz is not: it must reach the database).
SHARED_ENDPOINTS = frozenset(
    {
        "public.index",
        "public.article",
        "public.changes",
        "public.source",
        "public.feed",
        "public.sitemap",
        "public.sitemap_page",
        "public.robots",
    }
)
# Query parameters that ad networks, social sites and mailing tools add to links, a new value
# on every click, and that no page reads: in the key, each visitor from a busy link would miss.
TRACKING_PARAMETERS = frozenset(
    {"fbclid", "gclid", "gbraid", "wbraid", "dclid", "msclkid", "twclid", "ttclid", "yclid",
     "igshid", "li_fat_id", "mc_cid", "mc_eid", "_ga", "_gl"}
)  # fmt: skip
TRACKING_PREFIX = "utm_"
# What the key varies on besides the URL, said the same way to browsers and proxies. Cookie:
# a signed-in visitor gets another page (their name, the sign-out form) at the same URL.
VARY = ("HX-Request", "HX-History-Restore-Request", "Cookie")
# Headers kept with a page; the rest (security headers, cookies, HSTS) are made per request.
STORED_HEADERS = ("Content-Type", "Repr-Digest", "Vary")
# Columns of a public article that only record private editing: an author's autosaves of a new
# draft change them, readers' pages do not show them, so they do not turn the cache over.
BOOKKEEPING = frozenset({"version", "status", "updated_at"})

GENERATION = "public:generation"
NEXT_DUE = "public:next-due"
STATE_TIMEOUT = 30 * 24 * 3600  # long, but not "never": FileSystemCache prunes those first
PENDING = "pagecache.public_changed"
SHARED = "blog.pagecache.shared"
# How many times this process started a new generation: tells the fast path its own changes.
turnovers = 0  # set in the WSGI environ of a response this module shares
COMPRESSED_MEMO_BYTES = 32 * 2**20  # per process: about 3,000 compressed pages


def configure(app: Flask) -> None:
    """Choose the cache backend from the configuration, before the cache is bound.

    Redis when CACHE_REDIS_URL (or REDIS_URL) is set: shared by every server. Otherwise files in
    the instance folder: shared by the workers of one machine (several servers need Redis, or
    each would keep serving pages another one changed). Tests and the debugger get no cache
    unless they ask for one (a template edit must show at once).
    """
    config = app.config
    redis_url = config.get("CACHE_REDIS_URL") or config.get("REDIS_URL")
    if redis_url:
        config["CACHE_REDIS_URL"] = redis_url
    if not config.get("CACHE_TYPE"):
        if redis_url:
            config["CACHE_TYPE"] = "RedisCache"
        elif app.testing or app.debug:
            config["CACHE_TYPE"] = "NullCache"
        else:
            config["CACHE_TYPE"] = "FileSystemCache"
    config.setdefault("CACHE_DIR", str(Path(app.instance_path) / "page-cache"))
    config.setdefault("CACHE_DEFAULT_TIMEOUT", 600)  # a bound on staleness no hook could see
    # Files kept by FileSystemCache (~35 kB each). Past it every store scans the folder to prune,
    # so a small number keeps that scan short; live search makes many short-lived URLs.
    config.setdefault("CACHE_THRESHOLD", 2000)
    config.setdefault("CACHE_KEY_PREFIX", "blog:")
    if redis_url:  # Flask-Caching hands these to redis.from_url
        from . import add_defaults, redis_timeouts

        add_defaults(config, "CACHE_OPTIONS", redis_timeouts(config))
    config.setdefault("CACHE_NO_NULL_WARNING", True)  # "no cache" is a choice here, not a slip
    config.setdefault("PAGE_CACHE_MAX_AGE", 60)  # seconds browsers and CDNs keep a public page
    config.setdefault("PAGE_CACHE_STALE_WHILE_REVALIDATE", 600)
    # Finished answers each process keeps for repeat anonymous visits (blog/fastpath.py); 0: none.
    config.setdefault("PAGE_CACHE_MEMORY_BYTES", 16 * 2**20)
    # How long the fast path trusts the generation it read, for other workers' and servers'
    # changes (this process's own are seen at once): reading it is most of a hit's cost.
    config.setdefault("PAGE_CACHE_STATE_SECONDS", 1.0)
    # Compression is called from here (after the page is stored), not as its own hook.
    config.setdefault("COMPRESS_REGISTER", False)
    # Compressing a 50 kB page costs more than serving it from the cache: keep each compressed
    # body, found by its ETag (a hash of the bytes), so a hit or a 304 compresses nothing.
    config.setdefault("COMPRESS_CACHE_BACKEND", CompressedBodies)
    config.setdefault("COMPRESS_CACHE_KEY", compressed_body_key)


def init_app(app: Flask) -> None:
    """Serve and store shared pages, label every public response, and compress text."""
    app.extensions["pagecache"] = {
        "enabled": app.config["CACHE_TYPE"] not in ("NullCache", "null"),
        "release": release_fingerprint(app),
        "outage": Outage(),
    }
    app.before_request(answer_from_cache)
    app.after_request(compress_response)  # registered first, so it runs after the next one
    app.after_request(store_and_label)
    app.session_interface = FilesVaryNotOnCookies()


# Files: the same bytes for everyone, whatever their cookies (the site's CSS and JS, media).
FILE_ENDPOINTS = frozenset({"static", "media.file"})


class FilesVaryNotOnCookies(SecureCookieSessionInterface):
    """Flask's cookie session, without `Vary: Cookie` on files that no session changes.

    Flask adds `Vary: Cookie` to any response whose request read the session, and
    Flask-Login reads it after every request (its remember-me cookie), files included. A
    CDN or nginx would then keep one copy of site.css per visitor's cookie.
    """

    def save_session(self, app: Flask, session: SessionMixin, response: Response) -> None:
        super().save_session(app, session, response)
        if request.endpoint in FILE_ENDPOINTS and not session.modified:
            # Written whole: HeaderSet.discard("Cookie") drops it from the set, not the header.
            response.vary = [value for value in response.vary if value.lower() != "cookie"]


def release_fingerprint(app: Flask) -> str:
    """Hash what shapes every page besides the data: code, templates, static files, SITE_*.

    Part of every key, so a deploy (or a changed SITE_TITLE) never serves pages rendered by the
    previous release, while servers running the same release share their pages.
    """
    digest = hashlib.sha256()
    package = Path(__file__).parent
    folders = [package, Path(app.root_path, app.template_folder or "templates")]
    if app.static_folder:
        folders.append(Path(app.static_folder))
    for folder in folders:
        for path in sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix != ".pyc"):
            digest.update(path.as_posix().encode())
            digest.update(path.read_bytes())
    for name in ("SITE_URL", "SITE_TITLE", "SITE_EYEBROW", "SITE_TAGLINE"):
        digest.update(f"{name}={app.config.get(name)!r}".encode())
    return digest.hexdigest()[:16]


# Deciding who shares


def request_may_share() -> bool:
    """Say whether this request may be answered from, and stored in, the shared cache."""
    if request.method not in ("GET", "HEAD") or request.endpoint not in SHARED_ENDPOINTS:
        return False
    if "Authorization" in request.headers:
        return False
    remember = current_app.config.get("REMEMBER_COOKIE_NAME", "remember_token")
    if remember in request.cookies:
        return False  # Flask-Login may sign this visitor in, or must delete the cookie
    if current_user.is_authenticated:
        return False
    # A flash waiting is this visitor's own; "_remember" means Flask-Login will set a cookie.
    return "_flashes" not in session and "_remember" not in session


def response_may_share(response: Response) -> bool:
    """Say whether a response is the same for every anonymous reader and may be stored."""
    if response.status_code != 200 or response.is_streamed or response.direct_passthrough:
        return False
    if "Set-Cookie" in response.headers or embeds_csrf_token():
        return False
    if current_app.session_interface.should_set_cookie(current_app, session):
        return False  # the session changed (a flash, a token): Flask is about to set a cookie
    return not (response.cache_control.private or response.cache_control.no_store)


def embeds_csrf_token() -> bool:
    """Say whether this response holds a CSRF token (Flask-WTF keeps it in g once made)."""
    return current_app.config.get("WTF_CSRF_FIELD_NAME", "csrf_token") in g


# Outages


class Outage:
    """Whether to use the shared cache: not for a few seconds after it last failed (per app).

    A Redis that stops answering costs each call its timeout (REDIS_TIMEOUT); paying that on
    every request would make every page that slow. Meanwhile pages render afresh and are not
    stored; a change still tries to turn the generation over (see _turn_over_after_commit),
    and one that could not is owed: the first request once the cache answers again makes it,
    before anything is read (other servers would otherwise serve the old pages for as long as
    they are kept), and until then this process serves nothing from the cache.
    """

    PAUSE = 5.0  # seconds

    def __init__(self) -> None:
        self.until = 0.0
        self.turnover_owed = False

    def reachable(self) -> bool:
        return time.monotonic() >= self.until

    def failed(self) -> None:
        self.until = time.monotonic() + self.PAUSE

    def settled(self) -> bool:
        """Say whether the cache may be read: it answers, and no turnover is owed (or the one
        owed has just been made)."""
        if not self.reachable():
            return False
        if self.turnover_owed:
            try:
                new_generation()
            except Exception:
                self.failed()
                log.warning("page cache: the turnover owed could not be made yet", exc_info=True)
                return False
            self.turnover_owed = False
        return True


def _outage() -> Outage:
    return current_app.extensions["pagecache"]["outage"]


# Serving and storing


def answer_from_cache() -> Response | None:
    """Answer a shareable request with the stored page, before any view or query runs."""
    g.page_shared = request_may_share()
    if not g.page_shared or not current_app.extensions["pagecache"]["enabled"]:
        return None
    if not _outage().settled():
        return None
    try:
        key = page_key()
        entry = cache.get(key)
    except Exception:  # an unreachable Redis must cost speed, never the page
        _outage().failed()
        log.warning("page cache unavailable; rendering without it", exc_info=True)
        return None
    g.page_key = key
    if entry is None:
        return None
    body, headers, etag = entry
    g.page_hit = True
    response = current_app.response_class(body, 200, headers)
    response.set_etag(etag)
    return response


def store_and_label(response: Response) -> Response:
    """Store a shareable page, and tell browsers and proxies how long they may keep it."""
    if request.endpoint not in SHARED_ENDPOINTS:
        if embeds_csrf_token():  # a signed-in page (its sign-out form), an error page included
            response.headers.setdefault("Cache-Control", "no-store")
        return response
    if not (g.get("page_shared") and response_may_share(response)):
        response.headers["Cache-Control"] = "no-store"
        return response
    hit = g.get("page_hit", False)
    if not response.get_etag()[0]:
        response.add_etag()  # a strong hash of the uncompressed body; compression suffixes it
    key = g.get("page_key")
    if key and not hit:
        headers = [(k, v) for k, v in response.headers.items() if k in STORED_HEADERS]
        try:
            cache.set(key, (response.get_data(), headers, response.get_etag()[0]))
        except Exception:
            _outage().failed()
            log.warning("page cache unavailable; page not stored", exc_info=True)
    config = current_app.config
    response.headers["Cache-Control"] = (
        f"public, max-age={config['PAGE_CACHE_MAX_AGE']}, "
        f"stale-while-revalidate={config['PAGE_CACHE_STALE_WHILE_REVALIDATE']}"
    )
    response.vary.update(VARY)
    response.headers["X-Cache"] = "HIT" if hit else "MISS"
    request.environ[SHARED] = True  # blog/fastpath.py may replay this very answer
    # Answers a client holding the uncompressed variant; compress_response answers the others.
    response.make_conditional(request)
    return response


def compress_response(response: Response) -> Response:
    """Compress text responses, except those holding a CSRF token or a digest of their bytes.

    Flask-Compress makes a strong ETag per encoding ("abc:gzip") and answers If-None-Match
    after compressing. Pages with a CSRF token are signed-in pages that can reflect what a
    visitor typed (search): compressing those would let an attacker guess the token by size
    (BREACH), and they are few. A `Repr-Digest` (an article's approved source) names the plain
    bytes; compressed, the body would be another representation that the digest does not match.
    """
    if embeds_csrf_token() or "Repr-Digest" in response.headers:
        return response
    etag, weak = response.get_etag()
    g.compress_key = etag if etag and not weak and response.status_code == 200 else None
    compressible = response.mimetype in current_app.config["COMPRESS_MIMETYPES"]
    whole_file = response.status_code == 200 and request.endpoint == "static"
    if response.is_streamed and whole_file and compressible:
        # Streamed, the file would be compressed chunk by chunk and left open (Flask-Compress
        # drops the file's close), and without gzip. A static file is small: read it whole,
        # closed with the response, and compress it as one body.
        response.direct_passthrough = False
        response.make_sequence()
    if request.accept_encodings.best_match(compress.enabled_algorithms) is None:
        # The client takes none of them. Flask-Compress (1.25) would still pick one it refused
        # with q=0 ("br;q=0"), and the page would not decode: send it as it is.
        response.vary.add("Accept-Encoding")
        return response
    return compress.after_request(response)


def compressed_body_key(req: Any) -> str:
    """Name the body being compressed by its strong ETag ("" when it has none: not kept)."""
    return g.get("compress_key") or ""


class CompressedBodies:
    """Compressed bodies by "<encoding>;<ETag>", the least recently used dropped past a size.

    Per process on purpose: compress(body) is a pure function of the ETag'd bytes, so there is
    nothing here another worker or server needs; it only saves the CPU. A key without an ETag
    ("gzip;") names no particular body and is never kept.
    """

    def __init__(self) -> None:
        self.limit = COMPRESSED_MEMO_BYTES
        self.bodies: OrderedDict[str, bytes] = OrderedDict()
        self.size = 0
        self.lock = threading.Lock()

    def get(self, key: str) -> bytes | None:
        """Return a kept body and mark it recently used."""
        with self.lock:
            body = self.bodies.get(key)
            if body is not None:
                self.bodies.move_to_end(key)
            return body

    def set(self, key: str, value: bytes) -> None:
        """Keep a body, unless its key names none; drop the oldest past the limit."""
        if key.endswith(";") or len(value) > self.limit:
            return
        with self.lock:
            old = self.bodies.pop(key, None)
            self.size += len(value) - (len(old) if old is not None else 0)
            self.bodies[key] = value
            while self.size > self.limit:
                _, dropped = self.bodies.popitem(last=False)
                self.size -= len(dropped)


# The key and the public state


def page_key() -> str:
    """Build the shared key of this request's page."""
    parts = (
        current_app.extensions["pagecache"]["release"],
        public_state(),
        request.host_url,
        request.path,
        cache_query(request.query_string.decode("latin-1")),
        request.headers.get("HX-Request", ""),
        request.headers.get("HX-History-Restore-Request", ""),
    )
    return "page:" + hashlib.sha256("\x1f".join(parts).encode()).hexdigest()


def cache_query(query: str) -> str:
    """Write a query string as the caches key it: what the pages read, in one order.

    Tracking parameters go, and so does an empty one (a cleared search box sends `q=`), which
    every page reads as absent, unless its name comes again: `request.args.get()` reads the
    first value, so `?q=&q=a` searches for nothing. The others are ordered by name (their raw
    text kept, so nothing is decoded and written back differently); the sort is stable, so the
    values of a repeated name keep their order, and `?q=a&q=b` never shares with `?q=b&q=a`.
    """
    if not query:
        return ""
    kept = []
    for piece in query.split("&"):  # as parse_qsl splits it
        # The name and value as request.args reads them (the WSGI string holds the bytes as
        # latin-1, which Werkzeug decodes as UTF-8): two spellings of one name are one name.
        text = piece.encode("latin-1", "replace").decode("utf-8", "replace")
        for name, value in parse_qsl(text, keep_blank_values=True, errors="werkzeug.url_quote"):
            if not (name in TRACKING_PARAMETERS or name.startswith(TRACKING_PREFIX)):
                kept.append((name, value, piece))
    names = Counter(name for name, _value, _piece in kept)
    kept = [entry for entry in kept if entry[1] or names[entry[0]] > 1]
    kept.sort(key=lambda entry: entry[0])
    return "&".join(piece for _name, _value, piece in kept)


def public_state() -> str:
    """Name the public content as of now: the generation and the next scheduled publish time.

    The next-due record is tagged with the generation and the moment it was computed, so a
    record written from a snapshot older than the last change, or by a server whose clock runs
    ahead, is recomputed instead of trusted.
    """
    generation, due = read_public_state(cache)
    if generation is None:
        generation = secrets.token_hex(8)
        if not cache.add(GENERATION, generation, timeout=STATE_TIMEOUT):
            generation = cache.get(GENERATION) or generation
    now = clock.now()
    if not _due_is_current(due, generation, now):
        due = (generation, now, next_scheduled(now))
        cache.set(NEXT_DUE, due, timeout=STATE_TIMEOUT)
    moment = due[2]
    return f"{generation}:{moment.isoformat() if moment else '-'}"


def read_public_state(store: Any) -> tuple[Any, Any]:
    """Read the generation and next-due records from the shared cache, as they are stored.

    `store` is the cache or its backend (blog/fastpath.py reads the backend, outside any app
    context, and keeps what it read for a moment: see public_state_from).
    """
    generation, due = store.get_many(GENERATION, NEXT_DUE)
    return generation, due


def public_state_from(records: tuple[Any, Any], now: datetime) -> tuple[str, Any] | None:
    """Name the public state at `now` from records read without the database.

    None when it must be worked out (no generation yet, or the next scheduled time has passed):
    then only a request through Flask, which may query, can say it.
    """
    generation, due = records
    if generation is None or not _due_is_current(due, generation, now):
        return None
    return generation, due[2]


def _due_is_current(due: Any, generation: str, now: datetime) -> bool:
    if not isinstance(due, tuple) or len(due) != 3 or due[0] != generation:
        return False
    computed_at, moment = due[1], due[2]
    return computed_at <= now and (moment is None or now < moment)


def next_scheduled(now: datetime) -> datetime | None:
    """Find when the next scheduled article goes live (the public-time index answers)."""
    return db.session.scalar(
        select(func.min(Article.published_at)).where(Article.published_at > now)
    )


# Invalidation


def public_changed() -> None:
    """Say that this unit of work changes what readers see: the cache turns over at commit."""
    db.session.info[PENDING] = True


def new_generation() -> None:
    """Start a new public generation now: every server's next request renders afresh."""
    global turnovers
    turnovers += 1  # before the write: a reader of the old record reads again (fastpath.py)
    cache.set(GENERATION, secrets.token_hex(8), timeout=STATE_TIMEOUT)


def _changes_public(session: Session, obj: object) -> bool:
    """Say whether flushing this object changes a page readers can see."""
    if isinstance(obj, Category | Tag) and obj in session.new:
        return False  # readers meet both through a public article, whose publishing turns over
    if isinstance(obj, Category | Tag):
        return obj not in session.dirty or session.is_modified(obj)
    state = inspect(obj)
    if isinstance(obj, User):
        return state.deleted or obj in session.deleted or state.attrs.name.history.has_changes()
    if isinstance(obj, Article) and not state.pending:
        before = state.attrs.published_revision_id.history.deleted or ()
        if obj.published_revision_id is None and all(value is None for value in before):
            return False  # never public: a draft's autosaves leave the cache alone
        if obj in session.deleted:
            return True
        return any(
            attr.history.has_changes() for attr in state.attrs if attr.key not in BOOKKEEPING
        )
    return False


@event.listens_for(db.session, "before_flush")
def _watch_flush(session: Session, _context: Any, _instances: Any) -> None:
    """Catch public changes made without articles.publish (a renamed category or person)."""
    if session.info.get(PENDING):
        return
    for obj in chain(session.new, session.dirty, session.deleted):
        if _changes_public(session, obj):
            session.info[PENDING] = True
            return


@event.listens_for(db.session, "do_orm_execute")
def _watch_statements(execute_state: ORMExecuteState) -> None:
    """Catch statements that skip the flush: UPDATE/DELETE of articles, a renamed or deleted
    category or tag (they are created with INSERT … ON CONFLICT DO NOTHING; a new one is on no
    public article yet, so readers cannot see it: blog/search/visibility.py).

    Decisions are such conditional UPDATEs (one winner); a few of them (submit, reject) change
    nothing readers see, but they are rare, and a spare turnover costs one render per page.
    """
    mapper = execute_state.bind_mapper
    if mapper is None or execute_state.is_select:
        return
    if issubclass(mapper.class_, Category | Tag):
        written = execute_state.is_update or execute_state.is_delete
    else:
        written = issubclass(mapper.class_, Article) and (
            execute_state.is_update or execute_state.is_delete
        )
    if written:
        execute_state.session.info[PENDING] = True


@event.listens_for(db.session, "after_commit")
def _turn_over_after_commit(session: Session) -> None:
    """Start a new generation once the change is committed (never before: see the module)."""
    if not session.info.pop(PENDING, False) or not has_app_context():
        return
    if "pagecache" not in current_app.extensions:
        return
    try:
        new_generation()  # tried even in an outage: a turnover lost is pages kept too long
    except Exception:  # the change is committed; a cache outage must not turn it into a 500
        _outage().failed()
        _outage().turnover_owed = True
        log.error("page cache: could not start a new generation", exc_info=True)


@event.listens_for(db.session, "after_rollback")
def _forget_after_rollback(session: Session) -> None:
    session.info.pop(PENDING, None)
