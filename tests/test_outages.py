"""A shared service that fails (Redis hung or gone, a database restarted): readers and writers
get their answers, at the cost of speed, never a 500 or a request that waits for ever."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from blog.extensions import db

from .conftest import ADMIN, ON_POSTGRES, PASSWORD, _admin_connection, _make_app, sqlite_only


class SilentServer:
    """A TCP server that accepts connections and never answers: a Redis that hangs."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.connections: list[socket.socket] = []
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self) -> None:
        while True:
            try:
                connection, _ = self.listener.accept()
            except OSError:  # closed
                return
            self.connections.append(connection)  # read nothing, answer nothing

    def url(self, number: int) -> str:
        return f"redis://127.0.0.1:{self.port}/{number}"

    def close(self) -> None:
        self.listener.close()
        for connection in self.connections:
            connection.close()


@contextmanager
def silent_server() -> Iterator[SilentServer]:
    server = SilentServer()
    try:
        yield server
    finally:
        server.close()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _visit(app, answers: list[int]) -> None:  # noqa: ANN001 - a Flask app
    """What readers and a writer do: pages, the health check, a sign-in (rate limited)."""
    client = app.test_client()
    for path in ("/", "/healthz", "/?q=cache", "/", "/feed.xml", "/"):
        answers.append(client.get(path).status_code)
    answers.append(client.post("/login", data={"email": ADMIN, "password": PASSWORD}).status_code)


def _redis_app(tmp_path, template_databases, cache_url: str, limits_url: str):  # noqa: ANN001, ANN202
    return _make_app(
        tmp_path,
        template_databases["demo"],
        CACHE_REDIS_URL=cache_url,
        RATELIMIT_ENABLED=True,
        RATELIMIT_STORAGE_URI=limits_url,
    )


def test_a_redis_that_stops_answering_costs_a_moment_not_every_request(
    tmp_path, template_databases
):
    with silent_server() as redis:
        app = _redis_app(tmp_path, template_databases, redis.url(1), redis.url(0))
        answers: list[int] = []
        visitor = threading.Thread(target=_visit, args=(app, answers), daemon=True)
        visitor.start()
        visitor.join(timeout=60)  # liveness, not speed: without a timeout this never ends
        assert not visitor.is_alive(), f"a request waited on a silent Redis ({answers})"
        assert answers == [200, 200, 200, 200, 200, 200, 302]
        # Each store tried it once (or twice: a connection, then a health check), then left it
        # alone for a while instead of paying the timeout on every request.
        assert len(redis.connections) <= 4


def test_a_redis_that_is_gone_leaves_sign_in_and_pages_working(tmp_path, template_databases):
    nowhere = f"redis://127.0.0.1:{_free_port()}"
    app = _redis_app(tmp_path, template_databases, f"{nowhere}/1", f"{nowhere}/0")
    answers: list[int] = []
    _visit(app, answers)
    assert answers == [200, 200, 200, 200, 200, 200, 302]


@pytest.mark.skipif(not ON_POSTGRES, reason="PostgreSQL only; runs in make test-postgres")
def test_the_first_request_after_a_database_restart_is_answered(app, client):
    # A restart ends every connection the pool holds; the next request must not get a dead one.
    assert client.get("/").status_code == 200  # the pool now holds a connection
    with app.app_context():
        database = db.engine.url.database
    with _admin_connection() as admin:  # from outside the pool, as a restart would
        ended = admin.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = %s",
            (database,),
        ).fetchone()
    assert ended[0] >= 1
    assert [client.get("/").status_code for _ in range(3)] == [200, 200, 200]


@pytest.mark.parametrize("where", ["postgresql", "sqlite"])
def test_a_database_that_cannot_be_reached_is_a_503_that_says_so(tmp_path, where):
    # A stopped PostgreSQL answered uncached pages, sign-in and the API with a generic 500.
    from blog import create_app

    from .conftest import _config

    url = (
        f"postgresql+psycopg://blog@127.0.0.1:{_free_port()}/blog?connect_timeout=2"
        if where == "postgresql"
        else f"sqlite:///{tmp_path / 'gone' / 'blog.sqlite3'}"  # a folder that is not there
    )
    app = create_app(_config(url), instance_path=str(tmp_path / "instance"))
    client = app.test_client()
    signing_in = client.post("/login", data={"email": ADMIN, "password": PASSWORD})
    for answer in (client.get("/"), client.get("/articles/x"), signing_in):
        assert answer.status_code == 503
        assert answer.headers["Retry-After"]
        assert "The database is not answering" in answer.get_data(as_text=True)
    api = client.post("/api/drafts", json={}, headers={"Authorization": "Bearer x"})
    assert api.status_code == 503 and "database" in api.get_json()["message"]
    assert client.get("/healthz").status_code == 503


@sqlite_only
def test_a_signed_in_writer_gets_the_503_page_and_stays_signed_in(app, admin_client):
    # The error page loads who is signed in, from the database that just failed: a 500 instead.
    from sqlalchemy.engine import make_url

    with app.app_context():
        path = Path(make_url(db.engine.url).database)
        db.engine.dispose()
    moved = path.with_name("moved.sqlite3")
    path.rename(moved)
    path.mkdir()  # in its place, nothing SQLite can open
    try:
        for url in ("/studio/", "/review/", "/"):
            answer = admin_client.get(url)
            assert answer.status_code == 503, url
            assert "The database is not answering" in answer.get_data(as_text=True)
    finally:
        path.rmdir()
        moved.rename(path)
    with app.app_context():
        db.engine.dispose()
    assert admin_client.get("/review/").status_code == 200  # still signed in


def test_options_of_ones_own_keep_the_timeouts(tmp_path, template_databases):
    # An operator's own Redis options (TLS, health checks) are added to, never replace, the
    # timeouts that keep a hung Redis from hanging requests.
    nowhere = f"redis://127.0.0.1:{_free_port()}"
    app = _make_app(
        tmp_path,
        template_databases["demo"],
        CACHE_REDIS_URL=f"{nowhere}/1",
        CACHE_OPTIONS={"health_check_interval": 30},
        RATELIMIT_STORAGE_URI=f"{nowhere}/0",
        RATELIMIT_STORAGE_OPTIONS={"health_check_interval": 30},
    )
    wanted = {"health_check_interval": 30, "socket_connect_timeout": 0.5, "socket_timeout": 0.5}
    assert app.config["RATELIMIT_STORAGE_OPTIONS"] == wanted
    with app.app_context():
        from blog.extensions import cache

        pool = cache.cache._write_client.connection_pool
        assert {name: pool.connection_kwargs[name] for name in wanted} == wanted
