"""Fixtures: an app on a fresh copy of a migrated database per test, clients, and factories."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from bs4 import BeautifulSoup
from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner
from flask_migrate import upgrade
from sqlalchemy import select

from blog import create_app
from blog.articles import Draft, create_article, publish
from blog.extensions import db
from blog.models import Article, Role, Status, User

PASSWORD = "correct horse battery staple"


def _config(database: Path, **extra: object) -> dict[str, object]:
    config: dict[str, object] = {
        "TESTING": True,
        "SECRET_KEY": "test-secret",
        "SQLALCHEMY_DATABASE_URI": f"sqlite:///{database}",
        "WTF_CSRF_ENABLED": False,
        "RATELIMIT_ENABLED": False,
        "SITE_URL": "http://blog.test",
        # The test client's default host and the browser tests' server, besides SITE_URL's.
        "TRUSTED_HOSTS": ["localhost", "127.0.0.1"],
    }
    config.update(extra)
    return config


@pytest.fixture(scope="session")
def template_databases(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Build the schema through the real migrations once, empty and with the demo blog."""
    folder = tmp_path_factory.mktemp("templates")
    built = {}
    for name, demo in (("empty", False), ("demo", True)):
        database = folder / f"{name}.sqlite3"
        app = create_app(_config(database), instance_path=str(folder / f"instance-{name}"))
        with app.app_context():
            upgrade()
            if demo:
                from blog.demo import load_demo

                load_demo()
            for user in db.session.scalars(select(User)):
                user.set_password(PASSWORD)
            db.session.commit()
            db.engine.dispose()
        built[name] = database
    return built


def _make_app(tmp_path: Path, template: Path, **extra: object) -> Flask:
    database = tmp_path / "blog.sqlite3"
    shutil.copyfile(template, database)
    return create_app(_config(database, **extra), instance_path=str(tmp_path / "instance"))


@pytest.fixture
def app(tmp_path: Path, template_databases: dict[str, Path]) -> Iterator[Flask]:
    """The app on a fresh copy of the demo blog."""
    app = _make_app(tmp_path, template_databases["demo"])
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
    ) -> int:
        with app.app_context():
            author = db.session.scalar(select(User).filter_by(email=author_email))
            reviewer = db.session.scalar(select(User).filter_by(email=reviewer_email))
            draft = Draft(
                title=title, body=body, summary=summary, category=category, tags=tags or []
            )
            model = "test-model" if ai_generated else None
            article, revision = create_article(
                draft, author, ai_generated=ai_generated, ai_model=model
            )
            article.status = status
            if status in (Status.PUBLISHED, Status.SCHEDULED):
                when = published_at or datetime.now(UTC) - timedelta(minutes=1)
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
    """Fix "now" for publishing and visibility: call it with the moment to pretend it is."""
    import blog.articles
    import blog.models
    import blog.search
    import blog.workflow

    def set_now(moment: datetime) -> None:
        for module in (blog.models, blog.search, blog.workflow, blog.articles):
            monkeypatch.setattr(module, "utcnow", lambda: moment)

    return set_now
