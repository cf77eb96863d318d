"""The application factory: configuration, extensions, blueprints, commands, errors and headers."""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Any

from flask import Flask, Response, request
from werkzeug.exceptions import HTTPException
from werkzeug.middleware.proxy_fix import ProxyFix

from .extensions import csrf, db, limiter, login_manager, migrate

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

    if app.config.get("PROXY_FIX_X_FOR"):
        # Trust this many proxies' X-Forwarded-* headers, so rate limits see the client's address.
        hops = int(app.config["PROXY_FIX_X_FOR"])
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops)  # type: ignore[method-assign]

    db.init_app(app)
    migrate.init_app(app, db, directory=str(MIGRATIONS), render_as_batch=True)
    csrf.init_app(app)
    limiter.init_app(app)
    login_manager.init_app(app)

    with app.app_context():
        from .sqlite import configure_sqlite

        configure_sqlite(db.engine)

    from . import api, auth, cli, public, review, studio, templating

    templating.init_app(app)
    auth.init_app(app)
    app.register_blueprint(public.bp)
    app.register_blueprint(auth.bp)
    app.register_blueprint(studio.bp)
    app.register_blueprint(api.bp)
    app.register_blueprint(review.bp)
    cli.init_app(app)
    _register_error_pages(app)
    app.after_request(_security_headers)
    return app


def _configure(app: Flask, test_config: dict[str, Any] | None) -> None:
    """Layer the configuration: defaults, instance/config.py, environment, then test overrides."""
    instance = Path(app.instance_path)
    instance.mkdir(parents=True, exist_ok=True)
    app.config.from_mapping(
        SQLALCHEMY_DATABASE_URI=f"sqlite:///{instance / 'blog.sqlite3'}",
        SITE_TITLE="Tech Blog",
        SITE_EYEBROW="Technical Writing",
        SITE_TAGLINE=(
            "AI-assisted deep dives into backend engineering, databases, security, DevOps, "
            "and machine learning — written from real production experience."
        ),
        SITE_URL=None,  # e.g. "https://blog.example.com"; canonical links use the request host
        RATELIMIT_STORAGE_URI="memory://",
        RATELIMIT_HEADERS_ENABLED=True,
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
        for name in ("RATELIMIT_STORAGE_URI", "SITE_URL", "PROXY_FIX_X_FOR"):
            if os.environ.get(name):
                app.config[name] = os.environ[name]
    else:
        app.config.from_mapping(test_config)
    if not app.config.get("SECRET_KEY"):
        app.config["SECRET_KEY"] = _instance_secret(instance / "secret_key")


def _instance_secret(path: Path) -> str:
    """Read the generated secret key, creating it once (readable by the owner only)."""
    if not path.exists():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_hex(32))
    return path.read_text().strip()


def _security_headers(response: Response) -> Response:
    """Send the security headers on every response."""
    headers = response.headers
    headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
    headers.setdefault("X-Content-Type-Options", "nosniff")
    headers.setdefault("Referrer-Policy", "strict-origin-when-cross-origin")
    headers.setdefault("X-Frame-Options", "DENY")
    headers.setdefault("Permissions-Policy", "camera=(), microphone=(), geolocation=()")
    if request.path.startswith(("/studio", "/review", "/login", "/api")):
        headers.setdefault("Cache-Control", "no-store")
    return response


def _register_error_pages(app: Flask) -> None:
    """Answer errors with a page in the site's layout (JSON under /api), never a stack trace."""
    from flask import jsonify, render_template

    from .htmx import is_fragment

    def handle(error: HTTPException) -> Response | HTTPException:
        if error.code is None or error.code < 400:
            return error
        if request.path.startswith("/api/"):
            response = jsonify(error=error.name, message=error.description)
            response.status_code = error.code
        elif is_fragment():
            # htmx 4 swaps error responses too: answer with a fragment that keeps the target's id.
            target = request.headers.get("HX-Target", "").partition("#")[2]
            body = render_template("errors/_fragment.html", error=error, target=target)
            response = Response(body, error.code)
        else:
            templates = [f"errors/{error.code}.html", "errors/error.html"]
            response = Response(render_template(templates, error=error), error.code)
        for name, value in error.get_headers():  # Allow, Retry-After, WWW-Authenticate...
            if name.lower() != "content-type":
                response.headers[name] = value
        return response

    app.register_error_handler(HTTPException, handle)

    @app.errorhandler(500)
    def internal_error(error: Exception) -> tuple[str, int]:
        db.session.rollback()
        if request.path.startswith("/api/"):
            return jsonify(error="Internal Server Error", message="Something went wrong."), 500
        return render_template("errors/error.html", error=None), 500
