"""A person's own account: password change, sign-ins, sign out everywhere, reset links, the CLI."""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import urlsplit

import pytest
from itsdangerous import TimestampSigner
from sqlalchemy import select

from blog import clock
from blog.extensions import db
from blog.models import AuditEntry, SignIn, User

from .conftest import ADMIN, AUTHOR, PASSWORD, _make_app, login, parse

NEW_PASSWORD = "a brand new passphrase"


def _client(app, agent: str):  # noqa: ANN001, ANN202
    """A test client that says which browser it is."""
    client = app.test_client()
    client.environ_base["HTTP_USER_AGENT"] = agent
    return client


def _audit_actions(app) -> list[str]:  # noqa: ANN001
    with app.app_context():
        return list(db.session.scalars(select(AuditEntry.action).order_by(AuditEntry.id)))


def _change_password(client, current: str = PASSWORD, new: str = NEW_PASSWORD, again=None):  # noqa: ANN001, ANN202
    return client.post(
        "/account/password",
        data={
            "current_password": current,
            "new_password": new,
            "new_password_again": new if again is None else again,
        },
    )


def _signed_in(client) -> bool:  # noqa: ANN001
    return client.get("/studio/").status_code == 200


def test_the_account_page_needs_a_sign_in(client):
    response = client.get("/account")
    assert response.status_code == 302 and "/login" in response.headers["Location"]


def test_the_account_page_lists_sign_ins_and_marks_this_one(app):
    here = _client(app, "Firefox on the laptop")
    there = _client(app, "Safari on the phone")
    login(here, AUTHOR)
    login(there, AUTHOR, remember="1")
    response = here.get("/account")
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    soup = parse(response)
    assert soup.select_one("header nav a[href='/account']").get_text() == "Account"
    rows = soup.select("#sign-ins tbody tr")
    assert len(rows) == 2
    this = soup.select("#sign-ins tr.this-sign-in")
    assert len(this) == 1 and "Firefox on the laptop" in this[0].get_text()
    assert "This browser" in this[0].get_text()
    other = next(row for row in rows if row not in this)
    assert "Safari on the phone" in other.get_text() and "Remembered" in other.get_text()
    # Every form on the page carries the CSRF field.
    forms = soup.select("main form")
    assert len(forms) == 2 and all(f.select_one("input[name=csrf_token]") for f in forms)


@pytest.mark.parametrize(
    ("current", "new", "again", "message"),
    [
        ("wrong password", NEW_PASSWORD, None, "current password is not right"),
        (PASSWORD, "short", None, "at least 8 characters"),
        (PASSWORD, NEW_PASSWORD, "something else entirely", "not the same"),
        (PASSWORD, "x" * 1025, None, "at most 1024"),
    ],
)
def test_a_bad_password_change_says_why_and_changes_nothing(
    app, author_client, current, new, again, message
):
    response = _change_password(author_client, current, new, again)
    assert response.status_code == 400
    assert message in parse(response).select_one("[role=alert]").get_text()
    assert _signed_in(author_client)
    assert login(app.test_client(), AUTHOR).status_code == 302  # the old password still works


def test_a_password_change_ends_the_other_sign_ins_but_not_this_one(app):
    here = _client(app, "here")
    there = _client(app, "there")
    login(here, AUTHOR)
    login(there, AUTHOR, remember="1")
    kept_remember = there.get_cookie("remember_token").value

    response = _change_password(here)
    assert response.status_code == 302 and response.headers["Location"] == "/account"
    page = parse(here.get("/account"))  # this browser is still signed in, and told what happened
    assert "signed out everywhere else" in page.select_one(".flashes").get_text()
    assert len(page.select("#sign-ins tbody tr")) == 1
    assert not _signed_in(there)
    thief = app.test_client()
    thief.set_cookie("remember_token", kept_remember)
    assert not _signed_in(thief)

    assert login(app.test_client(), AUTHOR).status_code == 200  # the old password is gone
    assert login(app.test_client(), AUTHOR, password=NEW_PASSWORD).status_code == 302
    assert "password_changed" in _audit_actions(app)


def test_sign_out_everywhere_ends_every_sign_in_and_remember_cookie(app):
    here = _client(app, "here")
    there = _client(app, "there")
    login(here, AUTHOR, remember="1")
    login(there, AUTHOR, remember="1")
    kept = {name: here.get_cookie(name).value for name in ("session", "remember_token")}

    response = here.post("/account/sign-out-everywhere")
    assert response.status_code == 302 and response.headers["Location"].startswith("/login")
    assert here.get_cookie("remember_token") is None
    assert not _signed_in(here) and not _signed_in(there)
    for name, value in kept.items():
        thief = app.test_client()
        thief.set_cookie(name, value)
        assert not _signed_in(thief), name
    with app.app_context():
        user = db.session.scalar(select(User).filter_by(email=AUTHOR))
        assert db.session.scalars(select(SignIn).filter_by(user_id=user.id)).all() == []
    assert "signed_out_everywhere" in _audit_actions(app)
    assert login(here, AUTHOR).status_code == 302  # and signing in again works


def test_last_seen_is_written_at_most_every_few_minutes(app, author_client):
    def last_seen():  # noqa: ANN202
        with app.app_context():
            return db.session.scalar(select(SignIn.last_seen_at))

    def set_last_seen(moment) -> None:  # noqa: ANN001
        with app.app_context():
            db.session.execute(SignIn.__table__.update().values(last_seen_at=moment))
            db.session.commit()

    recent = clock.now().replace(microsecond=0) - timedelta(minutes=1)
    set_last_seen(recent)
    author_client.get("/account")
    assert last_seen() == recent
    set_last_seen(recent - timedelta(minutes=10))
    author_client.get("/account")
    assert last_seen() > recent


def test_an_identity_without_a_sign_in_token_signs_nobody_in(app, client):
    """Cookies from before sign-ins were recorded carry only id and session token."""
    with app.app_context():
        user = db.session.scalar(select(User).filter_by(email=AUTHOR))
        old_identity = f"{user.id}:{user.session_token}"
    with client.session_transaction() as session:
        session["_user_id"] = old_identity
        session["_fresh"] = True
    assert not _signed_in(client)


# The command line


def test_set_password_from_the_command_line_ends_sessions(app, runner, author_client):
    result = runner.invoke(args=["user", "set-password", AUTHOR, "--password", NEW_PASSWORD])
    assert result.exit_code == 0, result.output
    assert f"Set the password of {AUTHOR}" in result.output
    assert not _signed_in(author_client)
    assert login(app.test_client(), AUTHOR, password=NEW_PASSWORD).status_code == 302
    assert "password_set" in _audit_actions(app)


def test_set_password_prompts_twice_without_echo(app, runner):
    result = runner.invoke(
        args=["user", "set-password", AUTHOR], input=f"{NEW_PASSWORD}\n{NEW_PASSWORD}\n"
    )
    assert result.exit_code == 0, result.output
    assert NEW_PASSWORD not in result.output  # hidden input
    assert result.output.count("assword") >= 2  # asked, then asked to repeat
    assert login(app.test_client(), AUTHOR, password=NEW_PASSWORD).status_code == 302


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["nobody@example.com", "--password", NEW_PASSWORD], "no account for nobody@example.com"),
        ([AUTHOR, "--password", "short"], "at least 8 characters"),
    ],
)
def test_set_password_refuses_bad_input(app, runner, args, message):
    result = runner.invoke(args=["user", "set-password", *args])
    assert result.exit_code != 0 and message in result.output
    assert login(app.test_client(), AUTHOR).status_code == 302  # nothing changed


def _reset_link(runner, email: str = AUTHOR) -> str:  # noqa: ANN001
    result = runner.invoke(args=["user", "reset-link", email])
    assert result.exit_code == 0, result.output
    assert "works once, for 24 hours" in result.output
    return result.output.splitlines()[0]


def test_a_reset_link_works_once(app, runner, author_client):
    link = _reset_link(runner)
    parts = urlsplit(link)
    assert f"{parts.scheme}://{parts.netloc}" == "http://blog.test"  # on SITE_URL
    path = parts.path

    visitor = app.test_client()
    page = visitor.get(path)
    assert page.status_code == 200
    assert page.headers["Referrer-Policy"] == "no-referrer"
    soup = parse(page)
    assert AUTHOR in soup.select_one("main").get_text()
    assert soup.select_one("form input#new_password[type=password]") is not None

    response = visitor.post(
        path, data={"new_password": NEW_PASSWORD, "new_password_again": NEW_PASSWORD}
    )
    assert response.status_code == 302 and response.headers["Location"].startswith("/login")
    assert not _signed_in(author_client)  # whoever was signed in is signed out
    assert login(app.test_client(), AUTHOR, password=NEW_PASSWORD).status_code == 302
    assert "password_reset" in _audit_actions(app)

    again = visitor.get(path)
    assert again.status_code == 410
    soup = parse(again)
    assert soup.select_one("header nav") is not None  # in the site's layout
    assert "used already" in soup.select_one("#reset-reason").get_text()
    second = visitor.post(
        path, data={"new_password": "yet another one!", "new_password_again": "yet another one!"}
    )
    assert second.status_code == 410
    assert login(app.test_client(), AUTHOR, password=NEW_PASSWORD).status_code == 302


def test_a_reset_link_expires(app, runner, monkeypatch):
    path = urlsplit(_reset_link(runner)).path
    made = TimestampSigner.get_timestamp
    monkeypatch.setattr(
        TimestampSigner, "get_timestamp", lambda self: made(self) + 24 * 60 * 60 + 5
    )
    response = app.test_client().get(path)
    assert response.status_code == 410
    assert "expired" in parse(response).select_one("#reset-reason").get_text()


def test_the_reset_link_lifetime_comes_from_the_config(app, runner, monkeypatch):
    app.config["PASSWORD_RESET_MAX_AGE"] = 60
    result = runner.invoke(args=["user", "reset-link", AUTHOR])
    assert "for 1 minute," in result.output
    path = urlsplit(result.output.splitlines()[0]).path
    made = TimestampSigner.get_timestamp
    monkeypatch.setattr(TimestampSigner, "get_timestamp", lambda self: made(self) + 61)
    assert app.test_client().get(path).status_code == 410


def test_a_reset_link_stops_working_after_a_password_change(app, runner, author_client):
    path = urlsplit(_reset_link(runner)).path
    assert _change_password(author_client).status_code == 302
    assert app.test_client().get(path).status_code == 410


@pytest.mark.parametrize(
    "token",
    [
        "nonsense",
        "eyJ1c2VyIjoxfQ.ZZZZZZ.forgedsignature",
        "a" * 300,
        "%00%ff",
    ],
)
def test_a_forged_reset_link_is_a_clear_400(client, token):
    response = client.get(f"/account/reset/{token}")
    assert response.status_code == 400
    soup = parse(response)
    assert "not a valid password reset link" in soup.select_one("#reset-reason").get_text()
    assert soup.select_one("header nav") is not None


def test_a_reset_link_signed_with_another_key_is_refused(app, client):
    from itsdangerous import URLSafeTimedSerializer

    forged = URLSafeTimedSerializer("not the key", salt="password-reset").dumps(
        {"user": 1, "password": "x"}
    )
    assert client.get(f"/account/reset/{forged}").status_code == 400


def test_a_reset_with_mismatched_passwords_says_so_and_keeps_the_link(app, runner):
    path = urlsplit(_reset_link(runner)).path
    visitor = app.test_client()
    response = visitor.post(
        path, data={"new_password": NEW_PASSWORD, "new_password_again": "not the same at all"}
    )
    assert response.status_code == 400
    assert "not the same" in parse(response).select_one("[role=alert]").get_text()
    assert visitor.get(path).status_code == 200


def test_reset_link_without_site_url_says_it_is_relative(tmp_path, template_databases):
    app = _make_app(tmp_path, template_databases["demo"], SITE_URL=None)
    result = app.test_cli_runner().invoke(args=["user", "reset-link", AUTHOR])
    assert result.exit_code == 0, result.output
    assert result.output.startswith("/account/reset/")
    assert "relative to the site's address" in result.output
    with app.app_context():
        db.engine.dispose()


@pytest.mark.parametrize(
    ("email", "message"),
    [("nobody@example.com", "no account for"), (ADMIN, "deactivated")],
)
def test_reset_link_refuses_unknown_and_deactivated_accounts(runner, email, message):
    if email == ADMIN:
        assert runner.invoke(args=["user", "deactivate", ADMIN]).exit_code == 0
    result = runner.invoke(args=["user", "reset-link", email])
    assert result.exit_code != 0 and message in result.output


def test_a_reset_link_for_an_account_deactivated_since_is_refused(app, runner):
    path = urlsplit(_reset_link(runner)).path
    assert runner.invoke(args=["user", "deactivate", AUTHOR]).exit_code == 0
    response = app.test_client().get(path)
    assert response.status_code == 410
    assert "no longer active" in parse(response).get_text()


@pytest.fixture
def limited_app(tmp_path, template_databases):
    app = _make_app(tmp_path, template_databases["demo"], RATELIMIT_ENABLED=True)
    yield app
    with app.app_context():
        db.engine.dispose()


def test_guessing_the_current_password_is_rate_limited(limited_app):
    client = limited_app.test_client()
    login(client, AUTHOR)
    for _ in range(5):
        assert _change_password(client, current="guess").status_code == 400
    assert _change_password(client, current="guess").status_code == 429


def test_account_pages_are_valid_html(app, runner, author_client):
    from .test_html import _check

    _check(author_client.get("/account"))
    _check(_change_password(author_client, current="wrong", new="short"))
    path = urlsplit(_reset_link(runner)).path
    _check(app.test_client().get(path))
    _check(app.test_client().get("/account/reset/nonsense"))


def _production_app(tmp_path, template_databases):  # noqa: ANN001, ANN202
    """The demo app configured as in production: SITE_URL set, TRUSTED_HOSTS left to default
    from it, so "localhost" (the host of a bare test_request_context) is not trusted."""
    site = {"SITE_URL": "https://blog.example.com", "TRUSTED_HOSTS": None}
    return _make_app(tmp_path, template_databases["demo"], **site)


def test_reset_link_from_the_command_line_needs_no_trusted_localhost(tmp_path, template_databases):
    app = _production_app(tmp_path, template_databases)
    assert app.config["TRUSTED_HOSTS"] == ["blog.example.com"]
    result = app.test_cli_runner().invoke(args=["user", "reset-link", AUTHOR])
    assert result.exit_code == 0, result.output
    link = result.output.splitlines()[0]
    assert link.startswith("https://blog.example.com/account/reset/")
    page = app.test_client().get(link)  # the link itself, host and all, opens the form
    assert page.status_code == 200
    assert AUTHOR in parse(page).select_one("main").get_text()


def test_a_relative_reset_link_needs_no_trusted_localhost_either(tmp_path, template_databases):
    app = _make_app(
        tmp_path, template_databases["demo"], SITE_URL=None, TRUSTED_HOSTS=".example.com"
    )
    result = app.test_cli_runner().invoke(args=["user", "reset-link", AUTHOR])
    assert result.exit_code == 0, result.output
    assert result.output.startswith("/account/reset/")
