"""`flask check-deploy`: what in the configuration is unsafe for a public site, and the fix."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from urllib.parse import urlsplit

import click
from flask import Flask, current_app
from flask.cli import with_appcontext
from flask.helpers import get_debug_flag
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, OperationalError

from . import redis_timeouts
from .extensions import db
from .storage import media_storage

# Keys people copy from tutorials and examples; a guessed key lets anyone forge a session.
WELL_KNOWN_KEYS = {"dev", "secret", "changeme", "change-me", "test-secret", "your-secret-key"}
MIN_KEY_LENGTH = 32
LOCAL_HOSTS = {"", "localhost", "127.0.0.1", "::1"}
ENCRYPTED_SSLMODES = {"require", "verify-ca", "verify-full"}
NEW_KEY = "python -c 'import secrets; print(secrets.token_hex(32))'"


class Severity(Enum):
    """How much a finding matters: only UNSAFE findings fail the check."""

    UNSAFE = "UNSAFE"  # fix before going live
    WARNING = "WARNING"  # depends on how the site is run: read it and decide
    NOTE = "NOTE"  # worth knowing; nothing to fix on its own


@dataclass(frozen=True)
class Problem:
    """One finding: what is wrong and how to fix it."""

    severity: Severity
    what: str
    fix: str

    def __str__(self) -> str:
        return f"{self.severity.value:<7} {self.what}. fix: {self.fix}"


def deployment_problems(app: Flask) -> list[Problem]:
    """Check the configuration the way a public site needs it; the worst findings first."""
    checks: list[Callable[[Flask], list[Problem]]] = [
        _secret_key,
        _https,
        _hosts,
        _debugging,
        _rate_limits,
        _page_cache,
        _database,
        _media,
        _proxy,
    ]
    problems = [problem for check in checks for problem in check(app)]
    order = list(Severity)
    return sorted(problems, key=lambda p: order.index(p.severity))


def connection_problems(app: Flask) -> list[Problem]:
    """Reach what the configuration names: the database (at this release's schema), Redis and
    the media bucket. A setting can read right and still name a server that is not there."""
    problems = []
    schema = schema_problem()
    if schema:
        problems.append(
            Problem(
                Severity.UNSAFE,
                schema,
                "start the database or correct DATABASE_URL; run init-db for a new one",
            )
        )
    meanwhile = {
        "RATELIMIT_STORAGE_URI": "each process counts rate limits alone",
        "CACHE_REDIS_URL": "pages are rendered for every request",
    }
    for name, lost in meanwhile.items():
        url = str(app.config.get(name) or "")
        if urlsplit(url).scheme in ("redis", "rediss"):  # not sentinel or cluster URLs: unasked
            unreachable = _redis_problem(url, redis_timeouts(app.config))
            if unreachable:
                problems.append(
                    Problem(
                        Severity.UNSAFE,
                        f"{name} names a Redis that does not answer ({unreachable}): until it "
                        f"does, {lost}",
                        f"start that Redis or correct {name}",
                    )
                )
            elif name == "RATELIMIT_STORAGE_URI":
                cache_url = str(app.config.get("CACHE_REDIS_URL") or "")
                problems += _evicting_limits(url, cache_url, redis_timeouts(app.config))
    problem = media_storage().problem()
    if problem:
        problems.append(
            Problem(
                Severity.UNSAFE,
                f"media cannot be stored ({problem}): uploads answer 503 and images do not load",
                "create the bucket or the folder, or correct MEDIA_S3_BUCKET (with "
                "MEDIA_S3_ENDPOINT_URL and the AWS credentials) or MEDIA_ROOT",
            )
        )
    return problems


def _evicting_limits(url: str, cache_url: str, timeouts: dict[str, float]) -> list[Problem]:
    """Refuse rate limits kept in a Redis that evicts keys when full.

    Every limit key expires, so no eviction policy spares them: whatever fills that Redis (the
    page cache, one page per distinct search) pushes out the sign-in counters, and guessing
    goes on unlimited. A Redis that does not allow CONFIG (some hosted ones) is not judged.
    """
    import redis

    try:
        with redis.Redis.from_url(url, **timeouts) as client:
            limit = int(client.config_get("maxmemory").get("maxmemory", 0))
            policy = client.config_get("maxmemory-policy").get("maxmemory-policy", "")
    except (redis.RedisError, OSError, ValueError):
        return []
    if not limit or policy == "noeviction":
        return []
    where = urlsplit(url)
    shared = bool(cache_url) and urlsplit(cache_url)[:2] == where[:2]
    return [
        Problem(
            Severity.UNSAFE,
            f"RATELIMIT_STORAGE_URI names a Redis that evicts keys when it is full "
            f"(maxmemory-policy {policy})"
            + (", and shares it with the page cache (CACHE_REDIS_URL)" if shared else "")
            + ": keys written there push the sign-in counters out, and guessing goes unlimited",
            "give the rate limits a Redis of their own with maxmemory-policy noeviction (they "
            "need little memory), and keep allkeys-lru for the page cache's",
        )
    ]


def _redis_problem(url: str, timeouts: dict[str, float]) -> str | None:
    """Ping a Redis; return why it did not answer, or None."""
    import redis

    try:
        client = redis.Redis.from_url(url, **timeouts)
        client.ping()
        client.close()
    except (redis.RedisError, OSError, ValueError) as error:
        return str(error) or type(error).__name__
    return None


def schema_problem() -> str | None:
    """Say how the database's schema differs from the one this release's migrations end at."""
    from alembic.migration import MigrationContext
    from alembic.script import ScriptDirectory

    where = db.engine.url.render_as_string(hide_password=True)
    try:
        with db.engine.connect() as connection:
            current = set(MigrationContext.configure(connection).get_current_heads())
    except OperationalError as error:  # no server there, no such database, refused
        return f"cannot reach the database {where}: {str(error.orig).strip()}"
    script = ScriptDirectory.from_config(current_app.extensions["migrate"].migrate.get_config())
    expected = set(script.get_heads())
    if not current:
        return f"the database {where} has no tables yet: run `flask --app app init-db` first"
    if current - {revision.revision for revision in script.walk_revisions()}:
        return (
            f"the database {where} is at schema {', '.join(sorted(current))}, which a newer "
            "release made: run that release (or restore a backup made with this one)"
        )
    if current != expected:
        return (
            f"the database {where} is at schema {', '.join(sorted(current))} and this release "
            f"expects {', '.join(sorted(expected))}: run `flask --app app init-db` to upgrade it"
        )
    return None


def _secret_key(app: Flask) -> list[Problem]:
    key = str(app.config.get("SECRET_KEY") or "")
    generated = Path(app.instance_path) / "secret_key"
    if generated.is_file() and generated.read_text().strip() == key:
        # Strong, but each server that generates its own signs sessions no other server accepts.
        return [
            Problem(
                Severity.WARNING,
                "SECRET_KEY was generated into instance/secret_key: fine on one machine, but "
                "every server of the site must share one key or sign-ins break between them",
                f"set the same SECRET_KEY on every server (make one with {NEW_KEY})",
            )
        ]
    if len(key) < MIN_KEY_LENGTH or key.lower() in WELL_KNOWN_KEYS:
        return [
            Problem(
                Severity.UNSAFE,
                f"SECRET_KEY is too short or well known (under {MIN_KEY_LENGTH} characters): "
                "whoever guesses it can sign in as anyone",
                f"set SECRET_KEY to a long random value ({NEW_KEY}), or unset it on a "
                "single server to have one generated into instance/",
            )
        ]
    return []


def _https(app: Flask) -> list[Problem]:
    config = app.config
    problems = []
    site_url = config.get("SITE_URL") or ""
    behind_proxy = bool(config.get("PROXY_FIX_X_FOR"))
    proxy_hint = " (behind a proxy that ends TLS too: SITE_URL is what makes cookies Secure)"
    if not site_url:
        problems.append(
            Problem(
                Severity.UNSAFE,
                "SITE_URL is not set: the feed, sitemap, canonical links and API links take "
                "their host from the request's Host header, which a client can forge",
                "set SITE_URL=https://your.host" + (proxy_hint if behind_proxy else ""),
            )
        )
    elif urlsplit(site_url).scheme != "https":
        problems.append(
            Problem(
                Severity.UNSAFE,
                f"SITE_URL {site_url} is not https: passwords and sessions travel in plain text "
                "and no Strict-Transport-Security is sent",
                "serve the site over HTTPS and set SITE_URL=https://…" + proxy_hint,
            )
        )
    plain = [
        name for name in ("SESSION_COOKIE_SECURE", "REMEMBER_COOKIE_SECURE") if not config.get(name)
    ]
    if plain:
        problems.append(
            Problem(
                Severity.UNSAFE,
                f"the sign-in cookies may travel over plain HTTP ({', '.join(plain)} off)",
                "set SITE_URL to an https:// address (it turns them on), or set them to True",
            )
        )
    unscripted = [
        name
        for name in ("SESSION_COOKIE_HTTPONLY", "REMEMBER_COOKIE_HTTPONLY")
        if not config.get(name)
    ]
    if unscripted:
        problems.append(
            Problem(
                Severity.UNSAFE,
                f"scripts can read the sign-in cookies ({', '.join(unscripted)} off)",
                "remove the setting that turns them off",
            )
        )
    if site_url.startswith("https:") and not config.get("STRICT_TRANSPORT_SECURITY"):
        problems.append(
            Problem(
                Severity.WARNING,
                "STRICT_TRANSPORT_SECURITY is off: a first visit over http can be intercepted",
                "remove the setting to send the default (max-age=31536000; includeSubDomains)",
            )
        )
    return problems


def _hosts(app: Flask) -> list[Problem]:
    if app.config.get("TRUSTED_HOSTS"):
        return []
    return [
        Problem(
            Severity.UNSAFE,
            "any Host header is served (no trusted hosts): forged host names reach the pages "
            "and every link built from the request",
            "set SITE_URL (its host becomes the one served) and list any other names the site "
            "answers to in TRUSTED_HOSTS (comma-separated)",
        )
    ]


def _debugging(app: Flask) -> list[Problem]:
    config = app.config
    problems = []
    # The flask command sets DEBUG from FLASK_DEBUG, which is what `flask run` would use too.
    if config.get("DEBUG") or get_debug_flag():
        problems.append(
            Problem(
                Severity.UNSAFE,
                "DEBUG is on: an error page lets a visitor run code on the server",
                "unset FLASK_DEBUG and DEBUG (use `make dev` only on your own machine)",
            )
        )
    if not config.get("WTF_CSRF_ENABLED", True):
        problems.append(
            Problem(
                Severity.UNSAFE,
                "CSRF protection is off (WTF_CSRF_ENABLED): other sites can post forms as a "
                "signed-in user",
                "remove WTF_CSRF_ENABLED from the configuration",
            )
        )
    if config.get("LOGIN_DISABLED"):
        problems.append(
            Problem(
                Severity.UNSAFE,
                "LOGIN_DISABLED is on: the studio and the review queue are open to anyone",
                "remove LOGIN_DISABLED from the configuration",
            )
        )
    if config.get("TESTING"):
        problems.append(
            Problem(
                Severity.WARNING,
                "TESTING is on: errors propagate instead of showing the error page",
                "remove TESTING from the configuration",
            )
        )
    return problems


def _rate_limits(app: Flask) -> list[Problem]:
    config = app.config
    if not config.get("RATELIMIT_ENABLED", True):
        return [
            Problem(
                Severity.UNSAFE,
                "rate limits are off (RATELIMIT_ENABLED): passwords and tokens can be guessed "
                "at full speed",
                "remove RATELIMIT_ENABLED from the configuration",
            )
        ]
    storage = str(config.get("RATELIMIT_STORAGE_URI") or "memory://")
    if not storage.startswith("memory://"):
        return []
    # gunicorn reads WEB_CONCURRENCY for its worker count; only "1" makes per-process counts right.
    if os.environ.get("WEB_CONCURRENCY", "").strip() == "1":
        return [
            Problem(
                Severity.NOTE,
                "rate limits are counted in this one process (RATELIMIT_STORAGE_URI=memory://)",
                "use redis:// or memcached:// once there is more than one worker or server",
            )
        ]
    return [
        Problem(
            Severity.UNSAFE,
            "RATELIMIT_STORAGE_URI is memory://: each worker process and server counts on its "
            "own, so with N gunicorn workers every limit is N times looser",
            "set RATELIMIT_STORAGE_URI=redis://host:6379/0 (shared by every worker and server), "
            "or run a single worker and say so with WEB_CONCURRENCY=1",
        )
    ]


def _page_cache(app: Flask) -> list[Problem]:
    cache_type = str(app.config.get("CACHE_TYPE") or "")
    name = cache_type.rsplit(".", 1)[-1].lower()
    several_workers = os.environ.get("WEB_CONCURRENCY", "").strip() != "1"
    if name in ("simplecache", "simple") and several_workers:
        return [
            Problem(
                Severity.UNSAFE,
                "CACHE_TYPE is SimpleCache, one per process: a publish or a take-down turns over "
                "only the cache of the worker that made it, and the others keep serving old pages",
                "set CACHE_REDIS_URL=redis://host:6379/1, or leave CACHE_TYPE unset for the "
                "instance folder's file cache (one machine)",
            )
        ]
    if name in ("filesystemcache", "filesystem"):
        return [
            Problem(
                Severity.NOTE,
                "the page cache is a folder on this machine: fine for its workers, but a second "
                "server would not see the first one's changes",
                "for several servers set CACHE_REDIS_URL=redis://host:6379/1",
            )
        ]
    if name in ("nullcache", "null"):
        return [
            Problem(
                Severity.WARNING,
                "the page cache is off (CACHE_TYPE=NullCache): every reader's request renders "
                "from the database",
                "leave CACHE_TYPE unset (a file cache) or set CACHE_REDIS_URL",
            )
        ]
    return []


def _database(app: Flask) -> list[Problem]:
    raw = str(app.config.get("SQLALCHEMY_DATABASE_URI") or "")
    try:
        url = make_url(raw)
    except ArgumentError:
        return [Problem(Severity.UNSAFE, "the database URL does not parse", "fix DATABASE_URL")]
    backend = url.get_backend_name()
    if backend == "sqlite":
        return [
            Problem(
                Severity.NOTE,
                "SQLite serves one machine: several workers are fine, several servers are not, "
                "and the file must be on a local disk (a network filesystem corrupts it)",
                "for more than one server use PostgreSQL (DATABASE_URL=postgresql+psycopg://…); "
                "back up with `flask backup PATH`",
            )
        ]
    if backend == "postgresql":
        host = url.host or str(url.query.get("host") or "")
        sslmode = str(url.query.get("sslmode") or "")
        remote = host.lower() not in LOCAL_HOSTS and not host.startswith("/")
        if remote and sslmode not in ENCRYPTED_SSLMODES:
            return [
                Problem(
                    Severity.WARNING,
                    f"the connection to PostgreSQL on {host} may be unencrypted (sslmode="
                    f"{sslmode or 'prefer'} falls back to plain text, password included)",
                    "add ?sslmode=verify-full (or require) to DATABASE_URL",
                )
            ]
    return []


def _media(app: Flask) -> list[Problem]:
    if app.config.get("MEDIA_S3_BUCKET") or os.environ.get("MEDIA_S3_BUCKET"):
        return []
    several_servers = app.config.get("CACHE_REDIS_URL") or str(
        app.config.get("SQLALCHEMY_DATABASE_URI") or ""
    ).startswith("postgresql")
    if not several_servers:
        return []
    return [
        Problem(
            Severity.NOTE,
            "images are kept in MEDIA_ROOT on this machine: with PostgreSQL and Redis shared by "
            "several servers, the others would not find an image uploaded here",
            "set MEDIA_S3_BUCKET (any S3-compatible store), or make MEDIA_ROOT a folder every "
            "server shares",
        )
    ]


def _proxy(app: Flask) -> list[Problem]:
    if app.config.get("PROXY_FIX_X_FOR"):
        return []
    return [
        Problem(
            Severity.NOTE,
            "PROXY_FIX_X_FOR is not set: X-Forwarded-For and X-Forwarded-Proto are ignored",
            "behind a reverse proxy set PROXY_FIX_X_FOR=1 (the number of proxies) so rate limits "
            "see each client and HTTPS is recognised; never set it without one",
        )
    ]


@click.command("check-deploy")
@click.option(
    "--offline",
    is_flag=True,
    help="Read the configuration only; do not connect to the database, Redis or the bucket.",
)
@with_appcontext
def check_deploy(offline: bool) -> None:
    """List what in this configuration is unsafe for a public site; exit 1 when anything is.

    It also connects to what the configuration names (unless --offline), since a setting can
    read right and name a server that is down, a database never initialised, a missing bucket.
    """
    problems = deployment_problems(current_app)
    if not offline:
        problems = connection_problems(current_app) + problems
    for problem in problems:
        click.echo(str(problem))
    unsafe = sum(problem.severity is Severity.UNSAFE for problem in problems)
    if unsafe:
        click.echo(f"{unsafe} unsafe for a public site: fix them before going live.")
        raise SystemExit(1)
    click.echo("Nothing unsafe found in this configuration.")
