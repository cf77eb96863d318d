"""Browser fixtures: the real app on a free port, driven through Playwright and Chromium.

The server is the one `make run` starts: gunicorn with blog/gunicorn_conf.py, in its own process,
configured as in production (the shared page cache in its instance folder, CSRF, rate limits),
on a fresh copy of the demo database per test. BROWSER_SERVER=werkzeug serves the app from a
thread of the test process instead (test configuration, no page cache), to debug a failure.

Chromium is the system one: $CHROMIUM, else /usr/bin/chromium, else Playwright's own download.
Without any browser the tests are skipped, except under CI=true, where that is a failure.
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest
from flask import Flask
from werkzeug.serving import make_server

from blog import create_app
from blog.extensions import db

from ..conftest import AUTHOR, PASSWORD, Template, _config, fresh_database
from ..services import gunicorn_server

# Settings of the tester's shell that would point the server elsewhere than its instance folder.
PRODUCTION_SETTINGS = (
    "DATABASE_URL",
    "SECRET_KEY",
    "SITE_URL",
    "TRUSTED_HOSTS",
    "PROXY_FIX_X_FOR",
    "RATELIMIT_STORAGE_URI",
    "CACHE_TYPE",
    "CACHE_REDIS_URL",
    "REDIS_URL",
    "GUNICORN_CMD_ARGS",
)

BROWSER_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def chromium_path() -> str | None:
    """Find the system Chromium, or None to let Playwright use its own."""
    for candidate in (os.environ.get("CHROMIUM"), "/usr/bin/chromium"):
        if candidate and Path(candidate).exists():
            return candidate
    return None


class LiveServer:
    """The app served by Werkzeug in a thread, on a fresh copy of the demo database."""

    def __init__(self, folder: Path, template: Template) -> None:
        self.app = create_app(
            _config(fresh_database(folder, template), SITE_URL=None, WTF_CSRF_ENABLED=True),
            instance_path=str(folder / "instance"),
        )
        self.server = make_server("127.0.0.1", 0, self.app, threaded=True)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> LiveServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.thread.join(timeout=5)
        self.server.server_close()
        with self.app.app_context():
            db.engine.dispose()


class GunicornServer:
    """The app as `make run` serves it: gunicorn with the project's settings, in its own process.

    `app` is a second instance of the app on the same database and page cache, for what a test
    prepares from outside the browser (an API token through the CLI): its changes to public
    pages turn the server's cache over exactly as another worker's would.
    """

    def __init__(self, folder: Path, template: Template) -> None:
        database = fresh_database(folder, template)
        self.instance = folder / "instance"
        self.instance.mkdir()
        # A test reads as a visitor the moment it changed something as an admin, maybe on the
        # other worker: there, production's second of trust in the generation read
        # (blog/fastpath.py PublicState) would be a race, so this server reads it every time.
        (self.instance / "config.py").write_text("PAGE_CACHE_STATE_SECONDS = 0\n")
        self.env = {
            name: value for name, value in os.environ.items() if name not in PRODUCTION_SETTINGS
        }
        # Two workers, not one per core: enough to share the page cache and the database
        # between processes as in production, without crowding the machine that runs Chromium.
        self.env.update(DATABASE_URL=database, WEB_CONCURRENCY="2")
        self.app: Flask = create_app(
            _config(
                database,
                SITE_URL=None,
                WTF_CSRF_ENABLED=True,
                CACHE_TYPE="FileSystemCache",  # the server's cache, in the same instance folder
            ),
            instance_path=str(self.instance),
        )
        self.url = ""

    def __enter__(self) -> GunicornServer:
        with ExitStack() as stack:  # the documented idiom: undo what started if a step fails
            stack.callback(self._dispose)
            self.url = stack.enter_context(gunicorn_server(self.instance, self.env))
            self.stack = stack.pop_all()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stack.close()

    def _dispose(self) -> None:
        with self.app.app_context():
            db.engine.dispose()


@pytest.fixture
def live_server(
    tmp_path: Path, template_databases: dict[str, Template]
) -> Iterator[GunicornServer | LiveServer]:
    """The site on a free port, on a fresh copy of the demo database: gunicorn unless told."""
    kind = GunicornServer if os.environ.get("BROWSER_SERVER") != "werkzeug" else LiveServer
    with kind(tmp_path, template_databases["demo"]) as server:
        yield server


@pytest.fixture(scope="session")
def browser() -> Iterator[object]:
    try:
        from playwright.sync_api import Error, sync_playwright
    except ImportError:  # pragma: no cover - the test extras install it
        if os.environ.get("CI") == "true":
            raise
        pytest.skip("playwright is not installed")
    with sync_playwright() as playwright:
        try:
            browser = playwright.chromium.launch(executable_path=chromium_path(), args=BROWSER_ARGS)
        except Error as error:
            if os.environ.get("CI") == "true":
                pytest.fail(f"CI=true and no browser could be started: {error}")
            pytest.skip(f"no Chromium to drive: {error}")
        yield browser
        browser.close()


@pytest.fixture
def page(browser, live_server):  # noqa: ANN001, ANN201 - Playwright objects
    """A fresh browser page that fails the test on any console error (CSP violations included)."""
    context = browser.new_context(base_url=live_server.url)
    page = context.new_page()
    page.set_default_timeout(10_000)
    errors: list[str] = []
    page.console_errors = errors  # a test that expects an error (a 404 page) clears it
    page.on("console", lambda message: message.type == "error" and errors.append(message.text))
    page.on("pageerror", lambda error: errors.append(str(error)))
    yield page
    context.close()
    assert errors == [], f"the browser reported errors: {errors}"


def sign_in(page, email: str = AUTHOR) -> None:  # noqa: ANN001
    """Sign in through the form, as a person does, and land in the studio."""
    from playwright.sync_api import expect  # imported where used, like the browser fixture

    page.goto("/login?next=/studio/")
    page.get_by_label("E-mail").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(re.compile(r"/studio/$"))
