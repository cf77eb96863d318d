"""Several servers, one site: app instances sharing one database (and, for rate limits, Redis).

Nothing an instance keeps in its own memory may decide what another one answers: the work in the
database, sign-ins through the shared SECRET_KEY, rate limits through Redis.
"""

from __future__ import annotations

import http.cookiejar
import os
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import pytest
from bs4 import BeautifulSoup
from flask import Flask

from blog import create_app
from blog.extensions import db

from .conftest import ADMIN, AUTHOR, PASSWORD, _config, fresh_database, login, parse
from .services import gunicorn_server


@pytest.fixture
def two_apps(tmp_path: Path, template_databases) -> Iterator[tuple[Flask, Flask]]:  # noqa: ANN001
    """Two instances of the app on one copy of the demo database, as two servers would run."""
    url = fresh_database(tmp_path, template_databases["demo"])
    apps = tuple(
        create_app(_config(url), instance_path=str(tmp_path / name)) for name in ("one", "two")
    )
    yield apps
    for app in apps:
        with app.app_context():
            db.engine.dispose()


def test_a_draft_sent_to_one_server_is_approved_on_another_and_read_on_the_first(two_apps):
    one, two = two_apps
    token = one.test_cli_runner().invoke(args=["token", "create", AUTHOR]).stdout.strip()
    reader, admin = one.test_client(), two.test_client()
    draft = {
        "title": "Written on one, approved on two",
        "summary": "Shared state.",
        "category": "Backend",
        "tags": ["Scaling"],
        "body_markdown": "Both servers read the same database.\n",
        "ai_model": "test-model",
    }
    sent = reader.post("/api/drafts", json=draft, headers={"Authorization": f"Bearer {token}"})
    assert sent.status_code == 201, sent.json
    article_id, slug = sent.json["id"], sent.json["slug"]
    assert reader.get(f"/articles/{slug}").status_code == 404

    assert login(admin, ADMIN).status_code == 302
    page = parse(admin.get(f"/review/{article_id}"))
    assert page.h1.get_text(strip=True) == draft["title"]
    decided = admin.post(
        f"/review/{article_id}/decide",
        data={
            "action": "approve",
            "version": page.select_one("input[name=version]")["value"],
            "revision": page.select_one("input[name=revision]")["value"],
        },
    )
    assert (decided.status_code, decided.headers["Location"]) == (302, "/review/")

    article = parse(reader.get(f"/articles/{slug}"))
    assert article.h1.get_text(strip=True) == draft["title"]
    assert "Both servers read the same database." in article.select_one("article").get_text()
    listed = [a.get_text(strip=True) for a in parse(reader.get("/")).select(".card-title a")]
    assert draft["title"] in listed
    status = reader.get(f"/api/drafts/{article_id}", headers={"Authorization": f"Bearer {token}"})
    assert status.json["status"] == "published"


def test_a_sign_in_on_one_server_works_on_the_other(two_apps):
    one, two = two_apps
    browser = one.test_client()
    assert login(browser, AUTHOR).status_code == 302
    elsewhere = two.test_client()
    cookie = browser.get_cookie("session")
    elsewhere.set_cookie("session", cookie.value, domain=cookie.domain, path=cookie.path)
    account = elsewhere.get("/account")
    assert account.status_code == 200
    assert parse(account).h1.get_text(strip=True) == "Maya Okafor"
    # Signing out on the second server ends the sign-in on the first one too.
    elsewhere.post("/logout")
    assert browser.get("/account").headers["Location"] == "/login?next=%2Faccount"


# -- real servers: gunicorn processes sharing PostgreSQL (or SQLite) and Redis -----------------


@dataclass
class Server:
    """One gunicorn server of the site, as the tests reach it."""

    url: str


def start_server(stack: ExitStack, folder: Path, **config: object) -> Server:
    """Start the app under gunicorn, configured as in production by its instance/config.py."""
    folder.mkdir()
    settings = "".join(f"{name} = {value!r}\n" for name, value in config.items())
    (folder / "config.py").write_text(settings)
    env = dict(os.environ, WEB_CONCURRENCY="1")
    for name in ("DATABASE_URL", "SECRET_KEY", "RATELIMIT_STORAGE_URI", "SITE_URL"):
        env.pop(name, None)  # the instance's config.py decides, not the tester's shell
    return Server(stack.enter_context(gunicorn_server(folder, env)))


class Browser:
    """One visitor: a cookie jar used against whichever server answers."""

    def __init__(self) -> None:
        self.jar = http.cookiejar.CookieJar()
        handlers = [urllib.request.HTTPCookieProcessor(self.jar), _NoRedirects()]
        self.opener = urllib.request.build_opener(*handlers)

    def request(self, url: str, form: dict[str, str] | None = None) -> tuple[int, str]:
        data = urllib.parse.urlencode(form).encode() if form is not None else None
        try:
            with self.opener.open(url, data=data, timeout=30) as response:
                return response.status, response.read().decode()
        except urllib.error.HTTPError as error:
            return error.code, error.read().decode()

    def sign_in(self, server: Server, email: str, password: str) -> int:
        """Post the sign-in form with the CSRF token the page gave, as a browser would."""
        _status, page = self.request(f"{server.url}/login")
        token = BeautifulSoup(page, "html.parser").select_one("input[name=csrf_token]")["value"]
        form = {"csrf_token": token, "email": email, "password": password}
        return self.request(f"{server.url}/login", form)[0]


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):  # noqa: ANN002, ANN003, ANN201
        return None  # a 302 is an answer to check, not something to follow


@pytest.fixture
def servers(tmp_path: Path, template_databases, redis_url: str) -> Iterator[tuple[Server, Server]]:  # noqa: ANN001
    """Two gunicorn servers on one database and one Redis, with one SECRET_KEY."""
    url = fresh_database(tmp_path, template_databases["demo"])
    config = {
        "SECRET_KEY": "one key for every server of the site",
        "SQLALCHEMY_DATABASE_URI": url,
        "RATELIMIT_STORAGE_URI": redis_url,
        "RATELIMIT_KEY_PREFIX": f"servers-test-{tmp_path.name}",
        "SESSION_COOKIE_SECURE": False,  # plain HTTP on 127.0.0.1
    }
    with ExitStack() as stack:
        yield (
            start_server(stack, tmp_path / "one", **config),
            start_server(stack, tmp_path / "two", **config),
        )


def test_servers_share_sign_ins_and_rate_limits(servers):
    one, two = servers
    visitor = Browser()
    # The CSRF token and session cookie from one server are good on the other.
    assert visitor.sign_in(one, AUTHOR, PASSWORD) == 302
    status, page = visitor.request(f"{two.url}/account")
    assert status == 200
    assert BeautifulSoup(page, "html.parser").h1.get_text(strip=True) == "Maya Okafor"

    # Five failed sign-ins for one account from one address, spread over both servers: with
    # each server counting on its own (memory://), neither would have seen five.
    attacker = Browser()
    for server in (one, two, one, two, one):
        assert attacker.sign_in(server, ADMIN, "wrong password") == 200
    assert attacker.sign_in(two, ADMIN, "wrong password") == 429
