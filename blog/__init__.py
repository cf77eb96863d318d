"""The application factory: configuration, extensions, blueprints, commands, errors and headers."""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from flask import Config, Flask, Response, current_app, g, request
from flask.globals import request_ctx
from flask_wtf.csrf import CSRFError
from sqlalchemy.exc import OperationalError
from werkzeug.exceptions import (
    BadHost,
    BadRequest,
    HTTPException,
    SecurityError,
    ServiceUnavailable,
)
from werkzeug.middleware.proxy_fix import ProxyFix

from .database import normalise_database_url
from .extensions import cache, compress, csrf, db, limiter, login_manager, migrate
from .params import BoundedIntConverter
from .sqlite import reads_only_from_now_on

ROOT = Path(__file__).resolve().parent.parent
MIGRATIONS = ROOT / "migrations"

CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "font-src 'self'",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)


def create_app(
    test_config: dict[str, Any] | None = None, instance_path: str | None = None
) -> Flask:
    """Create and configure the blog application."""
    app = Flask(
        __name__,
        instance_path=instance_path
        or os.environ.get("BLOG_INSTANCE_PATH")
        or str(ROOT / "instance"),
        instance_relative_config=True,
        template_folder=str(ROOT / "templates"),
        static_folder=str(ROOT / "static"),
    )
    _configure(app, test_config)
    # Before any route is added: an <int:...> past the database's range is a 404, not a 500.
    app.url_map.converters["int"] = BoundedIntConverter

    db.init_app(app)
    migrate.init_app(app, db, directory=str(MIGRATIONS), render_as_batch=True)
    csrf.init_app(app)
    limiter.init_app(app)
    login_manager.init_app(app)
    from . import assets, pagecache

    pagecache.configure(app)  # the cache backend: Redis, files in instance/, or none (tests)
    cache.init_app(app)
    compress.init_app(app)
    pagecache.init_app(app)  # shared public pages, ETags, Cache-Control, compression
    assets.init_app(app)  # content-hashed static URLs, cached for a year

    with app.app_context():
        from .database import configure_database
        from .sqlite import configure_sqlite

        configure_database(db.engine)  # every database: no NUL characters in the text
        configure_sqlite(db.engine)  # SQLite only: WAL, busy timeout, BEGIN IMMEDIATE

    from . import account, api, auth, cli, media_views, public, review, studio, templating

    templating.init_app(app)
    auth.init_app(app)
    app.register_blueprint(public.bp)
    app.register_blueprint(auth.bp)
    app.register_blueprint(studio.bp)
    app.register_blueprint(api.bp)
    app.register_blueprint(review.bp)
    app.register_blueprint(account.bp)
    media_views.init_app(app)  # storage (folder or S3), /media/, studio uploads
    cli.init_app(app)
    _register_error_pages(app)
    app.after_request(_security_headers)

    from . import fastpath

    fastpath.install(app)  # repeat anonymous hits answered from memory, before Flask
    if app.config.get("PROXY_FIX_X_FOR"):
        # Trust this many proxies' X-Forwarded-* headers, so rate limits see the client's address
        # (outermost, so the fast path keys pages by the host and scheme the client asked for).
        hops = int(app.config["PROXY_FIX_X_FOR"])
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops)  # type: ignore[method-assign]
    return app


def _configure(app: Flask, test_config: dict[str, Any] | None) -> None:
    """Layer the configuration: defaults, instance/config.py, environment, then test overrides."""
    instance = Path(app.instance_path)
    instance.mkdir(parents=True, exist_ok=True)
    # Flask's default says "not Secure": drop it so that an explicit setting (even False) can be
    # told apart from no setting, which follows SITE_URL's scheme below.
    app.config.pop("SESSION_COOKIE_SECURE", None)
    app.config.from_mapping(
        SQLALCHEMY_DATABASE_URI=f"sqlite:///{instance / 'blog.sqlite3'}",
        SITE_TITLE="Tech Blog",
        SITE_EYEBROW="Technical Writing",
        SITE_TAGLINE=(
            "AI-assisted deep dives into backend engineering, databases, security, DevOps, "
            "and machine learning — written from real production experience."
        ),
        # e.g. "https://blog.example.com": absolute links use it, other hosts are refused, and
        # https makes the cookies Secure. Unset, links follow the request's host (development).
        SITE_URL=None,
        TRUSTED_HOSTS=None,  # names served besides SITE_URL's host, e.g. "www.example.com"
        STRICT_TRANSPORT_SECURITY="max-age=31536000; includeSubDomains",  # on HTTPS requests
        RATELIMIT_STORAGE_URI="memory://",
        RATELIMIT_HEADERS_ENABLED=True,
        # A rate limit store that fails must not fail the request: each process counts alone
        # until it answers again (Flask-Limiter checks it now and then).
        RATELIMIT_SWALLOW_ERRORS=True,
        RATELIMIT_IN_MEMORY_FALLBACK_ENABLED=True,
        # Seconds to wait for Redis (page cache, rate limits) before going on without it;
        # redis-py waits for ever by default, and a hung Redis would hang every request.
        REDIS_TIMEOUT=0.5,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        REMEMBER_COOKIE_HTTPONLY=True,
        REMEMBER_COOKIE_SAMESITE="Lax",
        WTF_CSRF_TIME_LIMIT=None,  # tied to the session instead, so a long editing session works
        MAX_CONTENT_LENGTH=2 * 1024 * 1024,
        API_MAX_BODY_BYTES=512 * 1024,
    )
    if test_config is None:
        app.config.from_pyfile("config.py", silent=True)
        if os.environ.get("SECRET_KEY"):
            app.config["SECRET_KEY"] = os.environ["SECRET_KEY"]
        if os.environ.get("DATABASE_URL"):
            app.config["SQLALCHEMY_DATABASE_URI"] = os.environ["DATABASE_URL"]
        for name in (
            "RATELIMIT_STORAGE_URI",
            "SITE_URL",
            "PROXY_FIX_X_FOR",
            "TRUSTED_HOSTS",
            "CACHE_TYPE",
            "CACHE_REDIS_URL",
            "REDIS_URL",
        ):
            if os.environ.get(name):
                app.config[name] = os.environ[name]
    else:
        app.config.from_mapping(test_config)
    if not app.config.get("SECRET_KEY"):
        app.config["SECRET_KEY"] = _instance_secret(instance / "secret_key")
    uri = app.config["SQLALCHEMY_DATABASE_URI"]
    if isinstance(uri, str):  # from DATABASE_URL, instance/config.py or a test's configuration
        app.config["SQLALCHEMY_DATABASE_URI"] = normalise_database_url(uri)
    # Added to whatever options the configuration gives (a pool size, TLS), never instead.
    if not str(app.config["SQLALCHEMY_DATABASE_URI"]).startswith("sqlite"):
        # A database restart ends every pooled connection; test each one as it is taken, so
        # the next request gets a live one instead of a 500.
        add_defaults(app.config, "SQLALCHEMY_ENGINE_OPTIONS", {"pool_pre_ping": True})
    if str(app.config["RATELIMIT_STORAGE_URI"]).startswith("redis"):
        add_defaults(app.config, "RATELIMIT_STORAGE_OPTIONS", redis_timeouts(app.config))
    _configure_site(app.config)


def add_defaults(config: Config, name: str, defaults: dict[str, Any]) -> None:
    """Give a dict setting these entries unless it has its own (a copy: never the default's)."""
    config[name] = {**defaults, **(config.get(name) or {})}


def redis_timeouts(config: Config) -> dict[str, float]:
    """The socket timeouts every Redis client here uses (REDIS_TIMEOUT, for connecting and
    for each answer): redis-py waits for ever by default."""
    timeout = config["REDIS_TIMEOUT"]
    return {"socket_connect_timeout": timeout, "socket_timeout": timeout}


def _configure_site(config: Config) -> None:
    """Derive cookie security and the trusted hosts from SITE_URL, keeping explicit settings."""
    site_url = config.get("SITE_URL") or ""
    site = urlsplit(site_url)
    if site_url and (site.scheme not in ("http", "https") or not site.hostname):
        raise ValueError(f"SITE_URL must look like https://blog.example.com, not {site_url!r}")
    if site.path not in ("", "/") or site.query or site.fragment:
        raise ValueError(
            f"SITE_URL must be the site's root, like https://blog.example.com, not {site_url!r}: "
            "the blog is not made to be served under a path"
        )
    https = site.scheme == "https"
    # A site served over HTTPS must never send its session over plain HTTP.
    config.setdefault("SESSION_COOKIE_SECURE", https)
    config.setdefault("REMEMBER_COOKIE_SECURE", https)
    # With SITE_URL set, a request for any other host is a 400 (Flask checks TRUSTED_HOSTS
    # before routing), so a forged Host header can never reach a page, a link or a cache.
    extra = config.get("TRUSTED_HOSTS") or []
    if isinstance(extra, str):
        extra = extra.split(",")
    hosts = [site.hostname] if site.hostname else []
    for name in (str(n).strip().lower() for n in extra):
        if name and name not in hosts:
            hosts.append(name)
    config["TRUSTED_HOSTS"] = hosts or None


def _instance_secret(path: Path) -> str:
    """Read the generated secret key, creating it once (readable by the owner only)."""
    if not path.exists():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_hex(32))
    return path.read_text().strip()


def _security_headers(response: Response) -> Response:
    """Send the security headers: nosniff on everything, the document policies on pages."""
    headers = response.headers
    # Only on HTTPS (directly, or through a trusted proxy's X-Forwarded-Proto): browsers ignore
    # it on plain HTTP, and sending it there would pin a development host to HTTPS.
    hsts = current_app.config.get("STRICT_TRANSPORT_SECURITY")
    if hsts and request.is_secure:
        headers.setdefault("Strict-Transport-Security", hsts)
    headers.setdefault("X-Content-Type-Options", "nosniff")
    if request.endpoint == "static":
        # The site's own CSS, JS and icons: the policies below govern documents, and these are
        # fetched on every first visit, where each repeated header line costs bytes.
        return response
    headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
    headers.setdefault("Referrer-Policy", "strict-origin-when-cross-origin")
    headers.setdefault("X-Frame-Options", "DENY")
    headers.setdefault("Permissions-Policy", "camera=(), microphone=(), geolocation=()")
    if request.path.startswith(("/studio", "/review", "/login", "/api")):
        headers.setdefault("Cache-Control", "no-store")
    return response


NOT_A_HOST_NAME = "The request's host name is not a valid one."


def _refuse_host(error: HTTPException) -> HTTPException:
    """Answer a request whose Host was refused before routing, building links on the site's own.

    Flask refused a host this site does not serve (SecurityError), or Werkzeug a name that is
    no host name at all (BadHost: "a..b", a label over 63 letters), before it could make a URL
    adapter, and the layout needs one for its links: bind one to the site's own name (never to
    the refused one; "localhost" when SITE_URL is not set, as links are then relative).
    """
    config = current_app.config
    site = urlsplit(config.get("SITE_URL") or "")
    request_ctx.url_adapter = current_app.url_map.bind(
        site.netloc or (config["TRUSTED_HOSTS"] or ["localhost"])[0],
        script_name=request.root_path or "/",
        url_scheme=site.scheme or request.scheme,
    )
    # Werkzeug's description repeats the forged name; say what to do instead.
    where = f" Use {config['SITE_URL']}" if config.get("SITE_URL") else ""
    if isinstance(error, SecurityError):
        return BadRequest(f"This site does not answer to that host name.{where}")
    return BadRequest(f"{NOT_A_HOST_NAME}{where}")


def _database_is_unreachable(error: OperationalError) -> bool:
    """Say whether a database error means "not there": no connection could be made (SQLAlchemy
    names no statement then), or one ended under a query (a server stopped or restarted)."""
    return error.statement is None or error.connection_invalidated


def _database_is_busy(error: OperationalError) -> bool:
    """Say whether a database error means "locked, try again" (SQLite busy, PostgreSQL 55P03)."""
    original = error.orig
    return "database is locked" in str(original) or getattr(original, "sqlstate", "") == "55P03"


# The fields a person types into the site's forms, as an error page names them when it hands
# them back (never a password or a hidden field).
TYPED_FIELDS = {
    "title": "Title",
    "summary": "Summary",
    "category": "Category",
    "tags": "Tags",
    "body": "Text",
    "comment": "Comment",
    "reason": "Reason",
}


def _refused_form(error: HTTPException) -> Response:
    """Answer a form refused for its sign-in or CSRF token, handing back the words it carried.

    It happens to a writer whose sign-in ended while a page was open (signed out in another
    tab, or everywhere): what they typed is only in this request now, and a reload or the
    sign-in redirect would drop it. It is shown to copy, never resubmitted from here; and only
    to a form sent from this site's own pages, so another site cannot put its words here.
    """
    from flask import render_template
    from flask_login import current_user

    own_page = _sent_from_this_site()
    typed = [
        (name, label, request.form[name])
        for name, label in TYPED_FIELDS.items()
        if own_page and request.form.get(name, "").strip()
    ]
    signed_out = (
        own_page
        and not current_user.is_authenticated
        and request.path.startswith(SIGNED_IN_PATHS)
        and not request.path.startswith("/account/reset")
    )
    body = render_template("errors/error.html", error=error, typed=typed, signed_out=signed_out)
    response = Response(body, error.code)
    response.headers["Cache-Control"] = "no-store"
    return response


SIGNED_IN_PATHS = ("/studio", "/review", "/account")


def _sent_from_this_site() -> bool:
    """Say whether the browser says this request comes from one of this site's pages."""
    fetched_from = request.headers.get("Sec-Fetch-Site")
    if fetched_from is not None:
        return fetched_from == "same-origin"
    origin = request.headers.get("Origin") or request.headers.get("Referer") or ""
    return urlsplit(origin).netloc == request.host


def _sign_in_first() -> Response:
    """Send someone not signed in to the sign-in form, as Flask-Login does; but answer a form
    sent after the sign-in ended with its words (a redirect would drop them), and an htmx
    request with a fragment it can show where it is."""
    from flask import flash, redirect
    from flask_login.utils import login_url
    from werkzeug.exceptions import Unauthorized

    from .htmx import is_fragment

    if request.method not in ("GET", "HEAD") or is_fragment():
        refused = Unauthorized("You were signed out: sign in again, then send it once more.")
        if is_fragment() or request.path.startswith("/api/"):
            raise refused  # the error handler answers in the request's own shape
        return _refused_form(refused)
    flash(login_manager.login_message, login_manager.login_message_category)
    return redirect(login_url(login_manager.login_view, next_url=request.url))


def _register_error_pages(app: Flask) -> None:
    """Answer errors with a page in the site's layout (JSON under /api), never a stack trace."""
    from flask import jsonify, render_template

    from .htmx import is_fragment

    def handle(error: HTTPException) -> Response | HTTPException:
        if error.code is None or error.code < 400:
            return error
        if isinstance(error, SecurityError | BadHost) and request_ctx.url_adapter is None:
            error = _refuse_host(error)
        if request.path.startswith("/api/"):
            response = jsonify(error=error.name, message=error.description)
            response.status_code = error.code
        elif is_fragment():
            # htmx 4 swaps error responses too: answer with a fragment that keeps the target's id.
            target = request.headers.get("HX-Target", "").partition("#")[2]
            body = render_template("errors/_fragment.html", error=error, target=target)
            response = Response(body, error.code)
        elif isinstance(error, CSRFError):
            response = _refused_form(error)
        else:
            templates = [f"errors/{error.code}.html", "errors/error.html"]
            response = Response(render_template(templates, error=error), error.code)
        for name, value in error.get_headers():  # Allow, Retry-After, WWW-Authenticate...
            if name.lower() != "content-type":
                response.headers[name] = value
        return response

    app.register_error_handler(HTTPException, handle)
    login_manager.unauthorized_handler(_sign_in_first)

    @app.errorhandler(OperationalError)
    def database_busy(error: OperationalError) -> Response:
        """Answer 503 and Retry-After when the database stayed locked past its busy timeout, or
        cannot be reached at all.

        Under a burst of writes SQLite's lock can outlast the timeout; the writer should try
        again in a moment, and the editor keeps its text. A stopped or restarting database
        server is the same to a reader: try again soon. Any other database failure is a 500.
        """
        db.session.rollback()
        if _database_is_unreachable(error):
            current_app.logger.error("the database cannot be reached: %s", error.orig)
            g.database_unreachable = True  # the error page is drawn for nobody (auth.load_user)
            gone = ServiceUnavailable(
                "The database is not answering right now. Nothing was saved: try again in a "
                "moment.",
                retry_after=5,
            )
            return handle(gone)  # type: ignore[return-value]
        if not _database_is_busy(error):
            raise error
        reads_only_from_now_on()  # the error page must not queue for the lock it just missed
        busy = ServiceUnavailable(
            "The site is busy writing other changes. Nothing was saved: try again in a moment.",
            retry_after=2,
        )
        return handle(busy)  # type: ignore[return-value]

    @app.before_request
    def answer_health_checks_on_any_host() -> Response | None:
        """Let a load balancer's health check in whatever Host it sends (often an IP address)."""
        refused = isinstance(request.routing_exception, SecurityError | BadHost)
        if refused and request.path == "/healthz":
            return app.make_response(app.view_functions["public.healthz"]())
        return None

    @app.before_request
    def refuse_a_host_name_links_cannot_use() -> None:
        """Refuse a Host that routes but is no name a link can carry ("xn--zz": bad punycode).

        Without SITE_URL, absolute links (canonical, feed, sitemap) are built on the request's
        host, and Werkzeug raises UnicodeError decoding such a name: a 500 on any page.
        """
        if app.config.get("SITE_URL") or request.path == "/healthz":
            return
        try:
            request.host_url  # noqa: B018 - decoding it is the check
        except UnicodeError:
            raise BadHost(NOT_A_HOST_NAME) from None

    @app.errorhandler(500)
    def internal_error(error: Exception) -> tuple[str, int]:
        db.session.rollback()
        if request.path.startswith("/api/"):
            return jsonify(error="Internal Server Error", message="Something went wrong."), 500
        return render_template("errors/error.html", error=None), 500
