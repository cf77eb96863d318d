"""Signing in and out: passwords, sessions, deactivation, rate limits and the `next` check."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from blog.extensions import db
from blog.models import User

from .conftest import ADMIN, AUTHOR, PASSWORD, _make_app, login, parse


def test_sign_in_and_out(client):
    response = login(client, AUTHOR, next="/studio/")
    assert response.status_code == 302 and response.headers["Location"] == "/studio/"
    assert client.get("/studio/").status_code == 200
    assert client.get("/logout").status_code == 405  # sign-out is POST only
    response = client.post("/logout")
    assert response.status_code == 302
    assert client.get("/studio/").status_code == 302


def test_wrong_password_says_so_and_keeps_the_email(client):
    response = login(client, AUTHOR, password="nope")
    assert response.status_code == 200
    soup = parse(response)
    assert "do not match" in soup.select_one("[role=alert]").get_text()
    assert soup.select_one("#email")["value"] == AUTHOR
    assert client.get("/studio/").status_code == 302


def test_email_is_case_insensitive(client):
    assert login(client, AUTHOR.upper()).status_code == 302


def test_session_is_renewed_at_sign_in(client):
    with client.session_transaction() as session:
        session["planted"] = "by an attacker"
    login(client, AUTHOR)
    with client.session_transaction() as session:
        assert "planted" not in session and session.get("_user_id")


def test_remember_me_sets_a_lasting_cookie(client):
    login(client, AUTHOR, remember="1")
    assert client.get_cookie("remember_token") is not None


def test_passwords_are_hashed_with_scrypt(app):
    with app.app_context():
        user = db.session.scalar(select(User).filter_by(email=AUTHOR))
        assert user.password_hash.startswith("scrypt:") and PASSWORD not in user.password_hash


def test_deactivation_ends_open_sessions_at_once(app, client, runner):
    login(client, AUTHOR, remember="1")
    assert client.get("/studio/").status_code == 200
    assert runner.invoke(args=["user", "deactivate", AUTHOR]).exit_code == 0
    assert client.get("/studio/").status_code == 302
    assert login(client, AUTHOR).status_code == 200  # and cannot sign in again


@pytest.mark.parametrize(
    "target",
    [
        "//evil.example",
        "////evil.example",
        "/\\evil.example",
        "\\\\evil.example",
        "https:\\evil.example",
        "/%09/evil.example",
        "/\t/evil.example",
        "javascript:alert(1)",
        "https://evil.example/",
        "http:evil.example",
        " //evil.example",
        "/\r\n/evil.example",
    ],
)
def test_next_never_leaves_the_site(client, target):
    response = login(client, AUTHOR, next=target)
    location = response.headers["Location"]
    assert location.startswith("/") and not location.startswith(("//", "/\\"))
    assert "evil.example" not in location.split("?")[0].lstrip("/").split("/")[0]


def test_next_keeps_local_paths(client):
    assert login(client, AUTHOR, next="/studio/1/edit?x=1").headers["Location"] == (
        "/studio/1/edit?x=1"
    )


@pytest.fixture
def limited_client(tmp_path, template_databases):
    app = _make_app(tmp_path, template_databases["demo"], RATELIMIT_ENABLED=True)
    return app.test_client()


def test_failed_sign_ins_are_rate_limited_per_account(limited_client):
    for _ in range(5):
        assert login(limited_client, AUTHOR, password="wrong").status_code == 200
    blocked = login(limited_client, AUTHOR, password="wrong")
    assert blocked.status_code == 429
    assert "Too many attempts" in parse(blocked).get_text()
    # The limit is on failures for that account: another account from the same address still works.
    assert login(limited_client, ADMIN).status_code == 302


def test_successful_sign_ins_do_not_count(limited_client):
    for _ in range(8):
        assert login(limited_client, AUTHOR).status_code == 302
        limited_client.post("/logout")


def test_failed_sign_ins_are_rate_limited_per_address(limited_client):
    for n in range(20):
        login(limited_client, f"nobody{n}@example.com", password="wrong")
    assert login(limited_client, "someone-else@example.com", password="x").status_code == 429


def _post_login(client, email: str, password: str, address: str, **form: str):  # noqa: ANN202
    """Sign in from a given client address."""
    return client.post(
        "/login",
        data={"email": email, "password": password, **form},
        environ_base={"REMOTE_ADDR": address},
    )


def test_sign_out_ends_the_remember_cookie_even_a_copied_one(app, client):
    login(client, AUTHOR, remember="1")
    copied = client.get_cookie("remember_token").value
    client.post("/logout")
    # The browser is told to drop the cookie...
    assert client.get_cookie("remember_token") is None
    assert client.get("/studio/").status_code == 302
    # ...and a copy kept by someone else no longer signs anybody in.
    thief = app.test_client()
    thief.set_cookie("remember_token", copied)
    assert thief.get("/studio/").status_code == 302


def test_sign_out_ends_a_copied_session_cookie(app, client):
    login(client, AUTHOR)
    copied = client.get_cookie("session").value
    client.post("/logout")
    thief = app.test_client()
    thief.set_cookie("session", copied)
    assert thief.get("/studio/").status_code == 302


def test_failures_from_one_address_do_not_lock_the_owner_out_elsewhere(limited_client):
    for _ in range(5):
        assert _post_login(limited_client, AUTHOR, "wrong", "203.0.113.7").status_code == 200
    assert _post_login(limited_client, AUTHOR, "wrong", "203.0.113.7").status_code == 429
    # The owner, somewhere else, still gets in.
    assert _post_login(limited_client, AUTHOR, PASSWORD, "198.51.100.20").status_code == 302


@pytest.fixture
def scrypt_calls(monkeypatch):
    """Count the scrypt derivations (the expensive part of a password check)."""
    import hashlib

    calls = []
    real = hashlib.scrypt

    def counting(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(hashlib, "scrypt", counting)
    return calls


@pytest.mark.parametrize("email", ["nobody@example.com", "", "inactive"])
def test_unknown_or_inactive_accounts_cost_one_password_check(
    app, client, runner, scrypt_calls, email
):
    """An unknown e-mail must take as long as a wrong password, or it tells who has an account."""
    if email == "inactive":
        assert runner.invoke(args=["user", "deactivate", ADMIN]).exit_code == 0
        email = ADMIN
    login(client, AUTHOR, password="wrong")
    assert len(scrypt_calls) == 1  # the baseline: a wrong password for a real account
    scrypt_calls.clear()
    response = login(client, email, password="wrong")
    assert response.status_code == 200
    assert len(scrypt_calls) == 1


def test_the_dummy_hash_costs_what_a_real_one_does():
    from werkzeug.security import generate_password_hash

    from blog.auth import DUMMY_PASSWORD_HASH

    method = generate_password_hash("x", method="scrypt").split("$")[0]
    assert DUMMY_PASSWORD_HASH.split("$")[0] == method
