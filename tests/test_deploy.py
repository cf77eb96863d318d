"""Production defaults: HTTPS cookies and HSTS, trusted hosts, and `flask check-deploy`."""

from __future__ import annotations

import socket
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from bs4 import BeautifulSoup
from flask import Flask
from werkzeug.test import EnvironBuilder, run_wsgi_app

from blog.deploy import Severity, deployment_problems
from blog.extensions import db

from .conftest import AUTHOR, PASSWORD, _make_app, login, own_redis, parse, sqlite_only

HSTS = "max-age=31536000; includeSubDomains"

# What a production configuration looks like with every finding fixed.
SAFE = {
    "TESTING": False,
    "SECRET_KEY": "x" * 64,
    "SITE_URL": "https://blog.example.com",
    "TRUSTED_HOSTS": None,
    "WTF_CSRF_ENABLED": True,
    "RATELIMIT_ENABLED": True,
}


@pytest.fixture
def make_app(tmp_path: Path, template_databases: dict[str, Path]) -> Iterator[Callable[..., Flask]]:
    """Build the demo app with configuration overrides; dispose of every engine afterwards."""
    made: list[Flask] = []

    def make(**extra: object) -> Flask:
        folder = tmp_path / f"app{len(made)}"
        folder.mkdir()
        made.append(_make_app(folder, template_databases["demo"], **extra))
        return made[-1]

    yield make
    for app in made:
        with app.app_context():
            db.engine.dispose()


# HTTPS: Secure cookies and HSTS


def test_https_site_url_makes_cookies_secure_and_sends_hsts(make_app):
    app = make_app(SITE_URL="https://blog.example.com")
    client = app.test_client()
    response = client.post(  # on the site's host: login() would send base_url as a field
        "/login",
        data={"email": AUTHOR, "password": PASSWORD, "remember": "y"},
        base_url="https://blog.example.com",
    )
    assert response.status_code == 302
    cookies = response.headers.getlist("Set-Cookie")
    session = next(c for c in cookies if c.startswith("session="))
    remember = next(c for c in cookies if c.startswith("remember_token="))
    assert "Secure" in session and "Secure" in remember
    page = client.get("/", base_url="https://blog.example.com")
    assert page.headers["Strict-Transport-Security"] == HSTS


def test_no_hsts_on_plain_http(make_app):
    app = make_app(SITE_URL="https://blog.example.com")
    response = app.test_client().get("/", base_url="http://blog.example.com")
    assert "Strict-Transport-Security" not in response.headers


def test_explicit_cookie_settings_win_over_the_https_default(make_app):
    app = make_app(SITE_URL="https://blog.example.com", SESSION_COOKIE_SECURE=False)
    assert app.config["SESSION_COOKIE_SECURE"] is False
    assert app.config["REMEMBER_COOKIE_SECURE"] is True


def test_plain_http_site_keeps_cookies_usable(client):
    response = login(client, AUTHOR)
    session = next(c for c in response.headers.getlist("Set-Cookie") if c.startswith("session="))
    assert "Secure" not in session


def test_hsts_behind_a_trusted_proxy_that_says_https(make_app):
    app = make_app(SITE_URL="https://blog.example.com", PROXY_FIX_X_FOR=1)
    client = app.test_client()
    secure = client.get(
        "/", base_url="http://blog.example.com", headers={"X-Forwarded-Proto": "https"}
    )
    assert secure.headers["Strict-Transport-Security"] == HSTS
    plain = client.get("/", base_url="http://blog.example.com")
    assert "Strict-Transport-Security" not in plain.headers


def test_forwarded_proto_is_ignored_without_a_trusted_proxy(make_app):
    app = make_app(SITE_URL="https://blog.example.com")
    response = app.test_client().get(
        "/", base_url="http://blog.example.com", headers={"X-Forwarded-Proto": "https"}
    )
    assert "Strict-Transport-Security" not in response.headers


# Hosts: absolute URLs from SITE_URL, other hosts refused


@pytest.mark.parametrize("path", ["/", "/sitemap.xml", "/feed.xml", "/robots.txt", "/login"])
def test_a_forged_host_is_a_400_page_in_the_layout(make_app, path):
    app = make_app(SITE_URL="https://blog.example.com", TRUSTED_HOSTS=None)
    response = app.test_client().get(path, base_url="https://evil.example")
    assert response.status_code == 400
    body = response.get_data(as_text=True)
    assert "evil.example" not in body
    soup = parse(response)
    assert soup.select_one("header.site-header") is not None  # the site's layout, not a bare 500


def _with_host(app, path: str, host: str) -> tuple[int, str]:  # noqa: ANN001
    """Send a request with this Host as a server would pass it on. (The test client cannot:
    it parses the URL itself, and "xn--zz" makes it raise before the app answers.)"""
    environ = EnvironBuilder(path=path).get_environ()
    environ["HTTP_HOST"] = host
    body, status, _headers = run_wsgi_app(app, environ, buffered=True)
    return int(status.split()[0]), b"".join(body).decode()


@pytest.mark.parametrize("host", ["a..b", "x" * 64 + ".example", "xn--zz"])
@pytest.mark.parametrize("site_url", [None, "https://blog.example.com"], ids=["no SITE_URL", ""])
def test_a_malformed_host_is_a_400_page_in_the_layout(make_app, host, site_url):
    """Werkzeug refuses such a Host before routing, and the layout's links need a URL adapter."""
    app = make_app(SITE_URL=site_url, TRUSTED_HOSTS=None)
    status, body = _with_host(app, "/", host)
    assert status == 400 and host not in body
    assert BeautifulSoup(body, "html.parser").select_one("header.site-header") is not None
    assert _with_host(app, "/healthz", host)[0] == 200  # a load balancer's check, whatever Host


def test_a_forged_host_header_behind_a_proxy_is_refused(make_app):
    app = make_app(SITE_URL="https://blog.example.com", TRUSTED_HOSTS=None, PROXY_FIX_X_FOR=1)
    client = app.test_client()
    forged = client.get(
        "/sitemap.xml", base_url="https://blog.example.com", headers={"X-Forwarded-Host": "evil"}
    )
    assert forged.status_code == 400 and b"evil" not in forged.data


def test_site_url_host_and_extra_trusted_hosts_are_served(make_app):
    app = make_app(SITE_URL="https://blog.example.com", TRUSTED_HOSTS="www.example.com, old.test")
    client = app.test_client()
    assert client.get("/", base_url="https://blog.example.com").status_code == 200
    assert client.get("/", base_url="https://blog.example.com:8443").status_code == 200
    for host in ("www.example.com", "old.test"):
        response = client.get("/sitemap.xml", base_url=f"https://{host}")
        assert response.status_code == 200
        # An extra name is served, but every absolute URL still names the site itself.
        root = ET.fromstring(response.data)
        locs = [el.text for el in root.iter("{http://www.sitemaps.org/schemas/sitemap/0.9}loc")]
        assert locs and all(loc.startswith("https://blog.example.com/") for loc in locs)
        canonical = parse(client.get("/", base_url=f"https://{host}")).select_one(
            "link[rel=canonical]"
        )
        assert canonical["href"].startswith("https://blog.example.com/")
    assert client.get("/", base_url="https://evil.example").status_code == 400


def test_healthz_answers_a_load_balancer_that_uses_the_ip(make_app):
    app = make_app(SITE_URL="https://blog.example.com", TRUSTED_HOSTS=None)
    response = app.test_client().get("/healthz", base_url="http://10.0.0.7:8000")
    assert response.status_code == 200 and response.json["database"] == "ok"


def test_a_site_url_without_scheme_stops_the_start(make_app):
    with pytest.raises(ValueError, match="SITE_URL must look like https://"):
        make_app(SITE_URL="blog.example.com")


@pytest.mark.parametrize("site_url", ["https://blog.example.com/blog", "https://b.example?x=1"])
def test_a_site_url_with_a_path_stops_the_start(make_app, site_url):
    # Accepted, it put feed and canonical links under /blog/ while the pages linked to /articles/.
    with pytest.raises(ValueError, match="the site's root"):
        make_app(SITE_URL=site_url)


def test_a_site_url_may_end_with_a_slash(make_app):
    assert make_app(SITE_URL="https://blog.example.com/").config["SITE_URL"]


def test_without_site_url_links_follow_the_request_host(make_app):
    app = make_app(SITE_URL=None, TRUSTED_HOSTS=None)
    response = app.test_client().get("/robots.txt", base_url="http://dev.local:5000")
    assert "Sitemap: http://dev.local:5000/sitemap.xml" in response.get_data(as_text=True)


# check-deploy


def test_check_deploy_passes_a_safe_configuration(make_app):
    app = make_app(**SAFE)
    app.config["RATELIMIT_STORAGE_URI"] = "redis://cache.internal:6379/0"
    result = app.test_cli_runner().invoke(args=["check-deploy", "--offline"])
    assert result.exit_code == 0, result.output
    assert "UNSAFE" not in result.output


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_check_deploy_reaches_what_the_configuration_names(make_app, monkeypatch):
    # The multi-server test's finding: a Redis that is down, a database without its schema,
    # a bucket that does not exist all passed, though each breaks the site it gates.
    monkeypatch.setenv("WEB_CONCURRENCY", "1")
    app = make_app(**SAFE)
    assert app.test_cli_runner().invoke(args=["check-deploy"]).exit_code == 0
    app.config["RATELIMIT_STORAGE_URI"] = f"redis://127.0.0.1:{_closed_port()}/0"
    result = app.test_cli_runner().invoke(args=["check-deploy"])
    assert result.exit_code == 1
    assert "UNSAFE  RATELIMIT_STORAGE_URI names a Redis that does not answer" in result.output
    assert app.test_cli_runner().invoke(args=["check-deploy", "--offline"]).exit_code == 0


@pytest.mark.parametrize(
    ("maxmemory", "policy", "unsafe"),
    [
        ("3mb", "allkeys-lru", True),
        ("3mb", "volatile-lru", True),  # the limits' keys expire too: they are evicted first
        ("3mb", "noeviction", False),
        ("0", "allkeys-lru", False),  # no memory limit: nothing is evicted
    ],
)
def test_check_deploy_refuses_rate_limits_in_a_redis_that_evicts(
    make_app, monkeypatch, maxmemory, policy, unsafe
):
    # With the README's allkeys-lru on the page cache's Redis, 1,500 random searches pushed the
    # sign-in counters out, and the next failed sign-ins were not limited.
    import redis

    monkeypatch.setenv("WEB_CONCURRENCY", "1")
    with own_redis() as url:  # its own: the policy set here must not reach other tests
        with redis.Redis.from_url(url) as client:
            client.config_set("maxmemory", maxmemory)
            client.config_set("maxmemory-policy", policy)
        app = make_app(**SAFE)
        app.config["RATELIMIT_STORAGE_URI"] = url
        app.config["CACHE_REDIS_URL"] = url.replace("/0", "/1")
        result = app.test_cli_runner().invoke(args=["check-deploy"])
    said = "UNSAFE  RATELIMIT_STORAGE_URI names a Redis that evicts keys when it is full"
    assert (said in result.output) is unsafe, result.output
    assert ("shares it with the page cache" in result.output) is unsafe
    assert result.exit_code == (1 if unsafe else 0), result.output


def test_check_deploy_says_a_database_needs_init_db(make_app, tmp_path, monkeypatch):
    monkeypatch.setenv("WEB_CONCURRENCY", "1")
    empty = tmp_path / "empty.sqlite3"
    app = make_app(**SAFE, SQLALCHEMY_DATABASE_URI=f"sqlite:///{empty}")
    result = app.test_cli_runner().invoke(args=["check-deploy"])
    assert result.exit_code == 1 and "has no tables yet" in result.output
    assert "init-db" in result.output


def test_check_deploy_says_where_images_go_when_servers_share_everything_else(make_app):
    app = make_app(**SAFE)
    app.config["CACHE_REDIS_URL"] = "redis://cache.internal:6379/1"
    assert any("MEDIA_S3_BUCKET" in p.fix for p in _findings(app)[Severity.NOTE])
    app.config["MEDIA_S3_BUCKET"] = "blog-media"
    assert not any("MEDIA_S3_BUCKET" in p.fix for p in _findings(app)[Severity.NOTE])


def test_check_deploy_lists_what_is_unsafe_and_exits_non_zero(make_app, monkeypatch):
    monkeypatch.delenv("WEB_CONCURRENCY", raising=False)
    monkeypatch.setenv("FLASK_DEBUG", "1")  # the flask command sets DEBUG from it
    app = make_app(
        TESTING=False,
        SECRET_KEY="dev",
        SITE_URL=None,
        TRUSTED_HOSTS=None,
        WTF_CSRF_ENABLED=False,
        RATELIMIT_ENABLED=True,
    )
    result = app.test_cli_runner().invoke(args=["check-deploy"])
    assert result.exit_code == 1
    unsafe = [line for line in result.output.splitlines() if line.startswith("UNSAFE")]
    text = "\n".join(unsafe)
    for word in ("SECRET_KEY", "SITE_URL", "cookie", "Host", "RATELIMIT_STORAGE_URI", "DEBUG"):
        assert word in text, word
    # Every finding says how to fix it.
    assert all("fix:" in line for line in unsafe)


def test_check_deploy_flags_an_http_site_url_and_insecure_cookies(make_app):
    app = make_app(**{**SAFE, "SITE_URL": "http://blog.example.com"})
    app.config["RATELIMIT_STORAGE_URI"] = "redis://cache.internal:6379/0"
    findings = _findings(app)
    assert any(p.what.startswith("SITE_URL") for p in findings[Severity.UNSAFE])
    assert any("cookie" in p.what for p in findings[Severity.UNSAFE])


def test_check_deploy_warns_about_a_generated_key_on_several_servers(make_app):
    app = make_app(**{**SAFE, "SECRET_KEY": None})
    app.config["RATELIMIT_STORAGE_URI"] = "redis://cache.internal:6379/0"
    findings = _findings(app)
    assert not findings[Severity.UNSAFE]
    assert any("instance/" in p.what for p in findings[Severity.WARNING])


def test_check_deploy_memory_rate_limits_are_fine_with_one_worker(make_app, monkeypatch):
    app = make_app(**SAFE)
    monkeypatch.setenv("WEB_CONCURRENCY", "4")
    assert any("RATELIMIT" in p.what for p in _findings(app)[Severity.UNSAFE])
    monkeypatch.setenv("WEB_CONCURRENCY", "1")
    assert not _findings(app)[Severity.UNSAFE]


@pytest.mark.parametrize(
    ("url", "warned"),
    [
        ("postgresql+psycopg://blog:pw@db.example.net/blog", True),
        ("postgresql+psycopg://blog:pw@db.example.net/blog?sslmode=verify-full", False),
        ("postgresql+psycopg://blog@localhost/blog", False),
        ("postgresql+psycopg:///blog?host=/run/postgresql", False),
    ],
)
def test_check_deploy_warns_about_postgres_without_tls(make_app, url, warned):
    app = make_app(**SAFE)
    app.config["SQLALCHEMY_DATABASE_URI"] = url
    warnings = _findings(app)[Severity.WARNING]
    assert any("sslmode" in p.fix for p in warnings) is warned


@pytest.mark.parametrize("scheme", ["postgres", "postgresql"])
def test_a_hosting_providers_database_url_is_read_as_psycopg(tmp_path, monkeypatch, scheme):
    """Heroku and Render set DATABASE_URL=postgres://…: check-deploy once died on it with a
    traceback (no such SQLAlchemy dialect), and postgresql:// asked for psycopg2."""
    from blog import create_app

    monkeypatch.setenv("DATABASE_URL", f"{scheme}://blog@127.0.0.1:{_closed_port()}/blog")
    monkeypatch.setenv("SECRET_KEY", "x" * 64)
    app = create_app(instance_path=str(tmp_path / "instance"))
    try:
        uri = app.config["SQLALCHEMY_DATABASE_URI"]
        assert uri.startswith("postgresql+psycopg://blog@127.0.0.1:")
        result = app.test_cli_runner().invoke(args=["check-deploy"])
        assert isinstance(result.exception, SystemExit), result.exception  # a finding, no crash
        assert result.exit_code == 1
        assert "start the database or correct DATABASE_URL" in result.output
    finally:
        with app.app_context():
            db.engine.dispose()


@sqlite_only  # the app's database is the one the suite runs on
def test_check_deploy_says_sqlite_is_single_machine(make_app):
    app = make_app(**SAFE)
    notes = _findings(app)[Severity.NOTE]
    assert any("SQLite" in p.what for p in notes)


def _findings(app: Flask) -> dict[Severity, list]:
    with app.app_context():
        problems = deployment_problems(app)
    return {s: [p for p in problems if p.severity is s] for s in Severity}


def test_check_deploy_knows_which_page_caches_several_workers_can_share(make_app, monkeypatch):
    monkeypatch.delenv("WEB_CONCURRENCY", raising=False)
    app = make_app(**SAFE)
    app.config["RATELIMIT_STORAGE_URI"] = "redis://cache.internal:6379/0"
    app.config["CACHE_TYPE"] = "SimpleCache"
    assert any("SimpleCache" in p.what for p in _findings(app)[Severity.UNSAFE])
    app.config["CACHE_TYPE"] = "FileSystemCache"
    findings = _findings(app)
    assert not findings[Severity.UNSAFE]
    assert any("second server" in p.what for p in findings[Severity.NOTE])
    app.config["CACHE_TYPE"] = "RedisCache"
    assert not any("cache" in p.what for p in sum(_findings(app).values(), []))
