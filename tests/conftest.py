"""Fixtures: an app on a fresh copy of a migrated database per test, clients, and factories.

The database is SQLite in a temporary folder unless TEST_DATABASE_URL names a PostgreSQL server
(`make test-postgres` starts a throwaway one): then the migrated databases are built once per
session as templates, and each test gets `CREATE DATABASE … TEMPLATE …`, dropped afterwards.
TEST_REDIS_URL (also set by `make test-postgres`) puts the rate limits of the tests that turn
them on into that Redis.
"""

from __future__ import annotations

import gc
import itertools
import os
import secrets
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from bs4 import BeautifulSoup
from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner
from flask_migrate import upgrade
from sqlalchemy import select
from sqlalchemy.engine import make_url

from blog import clock as blog_clock
from blog import create_app
from blog.articles import Draft, create_article, publish
from blog.extensions import db
from blog.models import Article, Revision, Role, Status, User

PASSWORD = "correct horse battery staple"

# Set by `make test-postgres`: a server database to create the test databases from.
POSTGRES_URL = os.environ.get("TEST_DATABASE_URL") or None
REDIS_URL = os.environ.get("TEST_REDIS_URL") or None
ON_POSTGRES = POSTGRES_URL is not None
# Tests of SQLite's own machinery (WAL, the online backup API, FTS5 files) run in `make test`.
sqlite_only = pytest.mark.skipif(ON_POSTGRES, reason="SQLite-specific; runs in make test")
# And PostgreSQL's own (pg_dump, TOAST storage) in `make test-postgres`.
postgres_only = pytest.mark.skipif(
    not ON_POSTGRES, reason="PostgreSQL only; runs in make test-postgres"
)

# A template is an SQLite file to copy, or the name of a PostgreSQL template database.
Template = Path | str

_RUN = secrets.token_hex(3)  # keeps this run's database names and Redis keys apart from others'
_database_numbers = itertools.count()
_databases_to_drop: list[str] = []
_apps_made: list[Flask] = []  # by _make_app, for their connections to be closed after the test


@contextmanager
def collector_off() -> Iterator[None]:
    """Collect, then keep Python's cyclic collector off; put it and its thresholds back after."""
    was_on, thresholds = gc.isenabled(), gc.get_threshold()
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.set_threshold(*thresholds)
        if was_on:
            gc.enable()


def _database_url(database: Path | str) -> str:
    """Return the SQLAlchemy URL of an SQLite file, or a URL given as is."""
    return database if isinstance(database, str) else f"sqlite:///{database}"


def _config(database: Path | str, **extra: object) -> dict[str, object]:
    """The test configuration for an app on `database` (an SQLite file or a database URL)."""
    url = _database_url(database)
    config: dict[str, object] = {
        "TESTING": True,
        "SECRET_KEY": "test-secret",
        "SQLALCHEMY_DATABASE_URI": url,
        "WTF_CSRF_ENABLED": False,
        "RATELIMIT_ENABLED": False,
        "SITE_URL": "http://blog.test",
        # The test client's default host and the browser tests' server, besides SITE_URL's.
        "TRUSTED_HOSTS": ["localhost", "127.0.0.1"],
    }
    config.update(extra)
    limited = config["RATELIMIT_ENABLED"] and "RATELIMIT_STORAGE_URI" not in extra
    if REDIS_URL and limited and config["TESTING"]:
        # Exercise the shared storage that several servers use in production (the deployment
        # checks' production-like apps, TESTING=False, keep the real default instead).
        config["RATELIMIT_STORAGE_URI"] = REDIS_URL
    return config


def _admin_connection():  # noqa: ANN202 - a psycopg connection
    """Connect to the PostgreSQL server's own database, outside any transaction (for DDL)."""
    import psycopg

    assert POSTGRES_URL is not None
    url = make_url(POSTGRES_URL).set(drivername="postgresql")
    return psycopg.connect(url.render_as_string(hide_password=False), autocommit=True)


def _postgres_url(name: str) -> str:
    assert POSTGRES_URL is not None
    return make_url(POSTGRES_URL).set(database=name).render_as_string(hide_password=False)


def _create_postgres_database(name: str, template: str | None = None) -> str:
    """Create a database (a copy of `template` when given) and return its URL."""
    statement = f'CREATE DATABASE "{name}"'
    if template:
        statement += f' TEMPLATE "{template}"'
    with _admin_connection() as connection:
        connection.execute(statement)
    return _postgres_url(name)


def _drop_postgres_databases(names: list[str]) -> None:
    """Drop databases, ending any connection a test left open (FORCE: PostgreSQL 13+)."""
    with _admin_connection() as connection:
        for name in names:
            connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def fresh_database(tmp_path: Path, template: Template) -> str:
    """Copy a template database for one test and return the copy's URL."""
    if isinstance(template, str):
        name = f"test_{_RUN}_{next(_database_numbers)}"
        _databases_to_drop.append(name)
        return _create_postgres_database(name, template)
    database = tmp_path / "blog.sqlite3"
    shutil.copyfile(template, database)
    return _database_url(database)


@pytest.fixture(autouse=True)
def _drop_test_databases() -> Iterator[None]:
    """Close the apps' connections after each test, then drop the databases it created.

    An open psycopg connection left for the garbage collector warns (an error here).
    """
    yield
    for app in _apps_made:
        with app.app_context():
            db.engine.dispose()
    _apps_made.clear()
    if ON_POSTGRES:
        # An app this test made and left undisposed warns when collected: collect now, so the
        # warning (an error) names this test rather than whichever test ran the collector.
        gc.collect()
    if _databases_to_drop:
        names = list(_databases_to_drop)
        _databases_to_drop.clear()
        _drop_postgres_databases(names)


@contextmanager
def own_redis() -> Iterator[str]:
    """Run a throwaway redis-server for one test or session; yield its URL.

    Without redis-server the test is skipped, except under CI=true, where that is a failure.
    """
    from .services import MissingServer, redis_server

    try:
        server = redis_server()
        url = server.__enter__()
    except MissingServer as error:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true and {error}")
        pytest.skip(str(error))
    try:
        yield url
    finally:
        server.__exit__(None, None, None)


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """A Redis for tests of shared state: TEST_REDIS_URL's, else a throwaway redis-server."""
    if REDIS_URL:
        yield REDIS_URL
        return
    with own_redis() as url:
        yield url


@pytest.fixture(autouse=True)
def _forget_rate_limits() -> Iterator[None]:
    """Empty TEST_REDIS_URL's Redis after each test, so no test counts another's requests."""
    yield
    if REDIS_URL:
        import redis

        with redis.Redis.from_url(REDIS_URL) as client:
            client.flushdb()


@pytest.fixture(scope="session")
def template_databases(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Template]]:
    """Build the schema through the real migrations once, empty and with the demo blog."""
    folder = tmp_path_factory.mktemp("templates")
    built: dict[str, Template] = {}
    for name, demo in (("empty", False), ("demo", True)):
        if ON_POSTGRES:
            template: Template = f"template_{_RUN}_{name}"
            url = _create_postgres_database(template)
        else:
            template = folder / f"{name}.sqlite3"
            url = _database_url(template)
        app = create_app(_config(url), instance_path=str(folder / f"instance-{name}"))
        with app.app_context():
            upgrade()
            if demo:
                from blog.demo import load_demo

                load_demo()
            for user in db.session.scalars(select(User)):
                user.set_password(PASSWORD)
            db.session.commit()
            db.session.remove()
            # A template database must have no connection left, or copying it fails.
            db.engine.dispose()
        built[name] = template
    yield built
    if ON_POSTGRES:
        _drop_postgres_databases([str(t) for t in built.values()])


def _make_app(tmp_path: Path, template: Template, **extra: object) -> Flask:
    """Create the app on a fresh copy of a template database, with configuration overrides."""
    url = fresh_database(tmp_path, template)
    app = create_app(_config(url, **extra), instance_path=str(tmp_path / "instance"))
    _apps_made.append(app)
    return app


@pytest.fixture
def app(tmp_path: Path, template_databases: dict[str, Path]) -> Iterator[Flask]:
    """The app on a fresh copy of the demo blog."""
    app = _make_app(tmp_path, template_databases["demo"])
    yield app
    with app.app_context():
        db.engine.dispose()


@pytest.fixture
def cached_app(tmp_path: Path, template_databases: dict[str, Path]) -> Iterator[Flask]:
    """The demo blog with a real (in-process) page cache; the other apps here run without one."""
    app = _make_app(tmp_path, template_databases["demo"], CACHE_TYPE="SimpleCache")
    yield app
    with app.app_context():
        db.engine.dispose()


@pytest.fixture
def empty_app(tmp_path: Path, template_databases: dict[str, Path]) -> Iterator[Flask]:
    """The app on a fresh, empty (migrated) database."""
    app = _make_app(tmp_path, template_databases["empty"])
    yield app
    with app.app_context():
        db.engine.dispose()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def runner(app: Flask) -> FlaskCliRunner:
    return app.test_cli_runner()


@pytest.fixture
def ctx(app: Flask) -> Iterator[None]:
    """An application context for tests that use the models directly."""
    with app.app_context():
        yield


def parse(response) -> BeautifulSoup:  # noqa: ANN001 - a werkzeug test response
    """Parse an HTML response."""
    return BeautifulSoup(response.get_data(as_text=True), "html.parser")


@pytest.fixture
def make_user(app: Flask) -> Callable[..., User]:
    """Create an account with the test password."""

    def make(email: str, name: str = "Someone", role: str = Role.AUTHOR) -> User:
        with app.app_context():
            user = User(email=email, name=name, role=role)
            user.set_password(PASSWORD)
            db.session.add(user)
            db.session.commit()
            db.session.refresh(user)
            db.session.expunge(user)
            return user

    return make


@pytest.fixture
def make_article(app: Flask) -> Callable[..., int]:
    """Create an article (published unless told otherwise) and return its id."""

    def make(
        title: str,
        body: str = "Some text for the body.",
        *,
        summary: str = "A summary.",
        category: str = "Backend",
        tags: list[str] | None = None,
        published_at: datetime | None = None,
        status: str = Status.PUBLISHED,
        ai_generated: bool = True,
        author_email: str = "maya@example.com",
        reviewer_email: str = "dennis@example.com",
        kind: str = "edit",  # "ai_original": revision 1 is an AI draft, as from the API
    ) -> int:
        with app.app_context():
            author = db.session.scalar(select(User).filter_by(email=author_email))
            reviewer = db.session.scalar(select(User).filter_by(email=reviewer_email))
            draft = Draft(
                title=title, body=body, summary=summary, category=category, tags=tags or []
            )
            model = "test-model" if ai_generated else None
            article, revision = create_article(
                draft, author, ai_generated=ai_generated, ai_model=model, kind=kind
            )
            article.status = status
            if status in (Status.PUBLISHED, Status.SCHEDULED):
                when = published_at or blog_clock.now() - timedelta(minutes=1)
                publish(article, revision, reviewer, publish_at=when)
            db.session.commit()
            return article.id

    return make


def get_article(app: Flask, article_id: int) -> Article:
    with app.app_context():
        article = db.session.get(Article, article_id)
        assert article is not None
        db.session.expunge(article)
        return article


def login(client: FlaskClient, email: str, password: str = PASSWORD, **extra: str):  # noqa: ANN201
    """Sign a test client in; return the response."""
    return client.post("/login", data={"email": email, "password": password, **extra})


def decide(client: FlaskClient, article_id: int, data: dict[str, str], **options: object):  # noqa: ANN201
    """Post a review decision as the review page's form does: with the revision and version the
    page shows (the admin "read" it just now), unless `data` gives its own; return the response.
    """
    form = parse(client.get(f"/review/{article_id}")).select_one(".decision-form")
    read = {
        name: field["value"]
        for name in ("revision", "version")
        if form is not None and (field := form.select_one(f"input[name={name}]")) is not None
    }
    return client.post(f"/review/{article_id}/decide", data={**read, **data}, **options)


def as_read(article: Article) -> dict[str, int]:
    """What an admin who has just read the article passes to transition()."""
    latest = db.session.scalar(
        select(Revision.number)
        .where(Revision.article_id == article.id)
        .order_by(Revision.number.desc())
        .limit(1)
    )
    return {"revision_number": latest, "expected_version": article.version}


AUTHOR = "maya@example.com"
ADMIN = "dennis@example.com"


@pytest.fixture
def author_client(app: Flask) -> FlaskClient:
    """A client signed in as the demo author."""
    client = app.test_client()
    assert login(client, AUTHOR).status_code == 302
    return client


@pytest.fixture
def admin_client(app: Flask) -> FlaskClient:
    """A client signed in as the demo admin (the seed's reviewer)."""
    client = app.test_client()
    assert login(client, ADMIN).status_code == 302
    return client


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Callable[[datetime], None]:
    """Fix "now" for every module (blog.clock): call it with the moment to pretend it is."""

    def set_now(moment: datetime) -> None:
        monkeypatch.setattr(blog_clock, "now", lambda: moment)

    return set_now
