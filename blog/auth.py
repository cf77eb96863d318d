"""Sign-in and sign-out: hashed passwords, one record per sign-in, rate limits and a safe `next`.

Every sign-in is a SignIn row whose random token is part of the identity Flask-Login keeps in the
session and in the "remember me" cookie (User.get_id). Signing out deletes the row, so a copy of
either cookie, kept anywhere, signs nobody in afterwards. Rotating the user's session token (sign
out everywhere, deactivation, a new password) deletes all of them.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import timedelta
from urllib.parse import urlsplit

from flask import (
    Blueprint,
    Flask,
    abort,
    current_app,
    flash,
    g,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_limiter.util import get_remote_address
from flask_login import current_user, login_user, logout_user
from flask_login.utils import decode_cookie
from sqlalchemy import delete, select, update
from sqlalchemy.exc import OperationalError
from werkzeug.security import check_password_hash
from werkzeug.wrappers import Response

from . import clock
from .audit import record
from .extensions import db, limiter, login_manager
from .models import SignIn, User
from .pagecache import FILE_ENDPOINTS
from .sqlite import READ_ONLY_METHODS

bp = Blueprint("auth", __name__)

# Failed sign-ins: per account *from one address* (a stranger elsewhere cannot lock the owner out)
# and per address (stops spraying many accounts). Only failures count; the windows are short.
ACCOUNT_LIMIT = "5 per 5 minutes"
ADDRESS_LIMIT = "20 per 5 minutes"

# A sign-in's "last seen" is written at most this often: a write on every page view is too many.
TOUCH_INTERVAL = timedelta(minutes=5)
# A sign-in unused for longer than this is deleted at the owner's next sign-in (no cookie lasts
# that long: Flask-Login's remember cookie is good for 365 days).
STALE_AFTER = timedelta(days=400)

# Checked when there is no such account (or it is deactivated), so that answer takes as long as
# a wrong password: otherwise the time tells a stranger who has an account. Its password was
# random and thrown away. It must use set_password's parameters (werkzeug's scrypt 32768:8:1);
# a test compares them.
DUMMY_PASSWORD_HASH = (
    "scrypt:32768:8:1$5HiySuB9zvOlMhua$c2ebe215d0e152e731f52e5544c086e356e5700e3fd515fb7a0b0a2ebe"
    "9991cb69eb70cc9544573c478200efc8be143b533f2678d11e871c32440f233b24ccd0"
)


def init_app(app: Flask) -> None:
    """Configure Flask-Login for this app."""
    login_manager.login_view = "auth.login"
    login_manager.login_message = "Please sign in to continue."
    login_manager.login_message_category = "info"
    login_manager.session_protection = "basic"
    app.before_request(_forget_an_ended_sign_in)


def _forget_an_ended_sign_in() -> None:
    """Delete a remember cookie that signs nobody in any more (signed out everywhere, a new
    password, a deactivated account). Kept, the browser would send it for a year, and the page
    cache never shares a page with a request that carries one: that reader would get every
    page rendered for them alone."""
    cookie = request.cookies.get(current_app.config.get("REMEMBER_COOKIE_NAME", "remember_token"))
    if cookie is None or request.endpoint in FILE_ENDPOINTS:
        return  # a file is public and immutable: it must never sign anyone in or out
    if decode_cookie(cookie) is None:
        return  # not signed by this site (another app on a parent domain): not ours to delete
    if not current_user.is_authenticated:
        logout_user()  # leaves the marker that makes Flask-Login delete the cookie; flashes stay


@login_manager.user_loader
def load_user(user_id: str) -> User | None:
    """Load the signed-in user; a stale session token, an ended sign-in or a deactivated account
    gets nobody (the same check serves the session and the remember cookie)."""
    if g.get("database_unreachable"):  # drawing the 503 page: asking again would fail again
        return None
    ident, _, rest = user_id.partition(":")
    session_token, _, sign_in_token = rest.partition(":")
    if not ident.isdigit() or not session_token or not sign_in_token:
        return None
    user = db.session.get(User, int(ident))
    if user is None or not user.active:
        return None
    if not hmac.compare_digest(user.session_token.encode(), session_token.encode()):
        return None
    sign_in = db.session.scalar(
        select(SignIn).filter_by(token_hash=SignIn.hash_token(sign_in_token), user_id=user.id)
    )
    if sign_in is None:
        return None
    user.sign_in_token = sign_in_token
    _touch(sign_in)
    return user


def _touch(sign_in: SignIn) -> None:
    """Note when a sign-in was last used, at most every TOUCH_INTERVAL, and never at any cost."""
    now = clock.now()
    if now - sign_in.last_seen_at < TOUCH_INTERVAL:
        return
    if request.method not in READ_ONLY_METHODS or g.get("may_write", False):
        # This request's transaction began with BEGIN IMMEDIATE: write through it (kept if the
        # view commits; a lost "last seen" costs nothing).
        sign_in.last_seen_at = now
        return
    # A page view reads in a deferred transaction that must not turn into a writer (see
    # sqlite.py): write on a short connection of its own instead.
    try:
        with db.engine.begin() as connection:
            connection.execute(
                update(SignIn).where(SignIn.id == sign_in.id).values(last_seen_at=now)
            )
    except OperationalError:
        pass  # the database is busy: the next page view tries again


def start_sign_in(user: User, remember: bool) -> SignIn:
    """Sign `user` in with a new session and a new SignIn record (the caller commits)."""
    now = clock.now()
    db.session.execute(
        delete(SignIn).where(SignIn.user_id == user.id, SignIn.last_seen_at < now - STALE_AFTER)
    )
    token = secrets.token_hex(16)
    sign_in = SignIn(
        user_id=user.id,
        token_hash=SignIn.hash_token(token),
        created_at=now,
        last_seen_at=now,
        user_agent=request.user_agent.string[:200],
        remote_addr=(request.remote_addr or "")[:64],
        remember=remember,
    )
    db.session.add(sign_in)
    session.clear()  # a new session at sign-in: nothing planted before survives
    user.sign_in_token = token
    login_user(user, remember=remember)
    return sign_in


def current_sign_in() -> SignIn | None:
    """Return the SignIn record of this browser's sign-in, if someone is signed in."""
    token = current_user.sign_in_token if current_user.is_authenticated else None
    if not token:
        return None
    return db.session.scalar(select(SignIn).filter_by(token_hash=SignIn.hash_token(token)))


def end_other_sign_ins(user: User) -> int:
    """End every sign-in of `user` but this browser's; return how many ended (caller commits)."""
    keep = current_sign_in()
    query = delete(SignIn).where(SignIn.user_id == user.id)
    if keep is not None:
        query = query.where(SignIn.id != keep.id)
    return db.session.execute(query).rowcount


def forget_this_browser() -> None:
    """Empty this browser's session and drop its remember cookie (after the sign-in ended)."""
    session.clear()
    # After session.clear(): logout_user leaves the marker (_remember = "clear") that makes
    # Flask-Login delete the remember cookie in the response. Clearing after it wiped the marker.
    logout_user()


def safe_next(target: str | None) -> str:
    """Return `target` if it is a path on this site, else the home page."""
    fallback = url_for("public.index")
    if not target:
        return fallback
    # Browsers treat backslashes as slashes and drop tabs and newlines: normalise the same way.
    cleaned = "".join(ch for ch in target if ch not in "\t\r\n").replace("\\", "/").strip()
    parts = urlsplit(cleaned)
    if parts.scheme or parts.netloc or not cleaned.startswith("/") or cleaned.startswith("//"):
        return fallback
    return cleaned


def _account_key() -> str:
    """Key the per-account limit by account and address, bounded in length whatever is typed."""
    email = request.form.get("email", "").strip().lower()
    digest = hashlib.sha256(email.encode()).hexdigest()[:32]
    return f"login-account:{digest}:{get_remote_address()[:64]}"


def _failed_only(response: Response) -> bool:
    """Count only failed attempts against the limits (a 200 re-shows the form with an error)."""
    return response.status_code == 200 and request.method == "POST"


@bp.route("/login", methods=["GET", "POST"])
@limiter.limit(ACCOUNT_LIMIT, key_func=_account_key, methods=["POST"], deduct_when=_failed_only)
@limiter.limit(ADDRESS_LIMIT, methods=["POST"], deduct_when=_failed_only)
def login() -> Response | str:
    """Show the sign-in form and sign the user in."""
    asked = request.values.get("next")  # without one, people land where they work
    next_url = safe_next(asked)
    if current_user.is_authenticated:
        return redirect(next_url)
    error = None
    email = ""
    if request.method == "POST":
        email = request.form.get("email", "").strip().lower()
        password = request.form.get("password", "")
        user = db.session.scalar(select(User).filter_by(email=email)) if email else None
        if user is not None and user.active:
            accepted = user.check_password(password)
        else:
            check_password_hash(DUMMY_PASSWORD_HASH, password)  # the same work, the same time
            accepted = False
        if user is not None and accepted:
            start_sign_in(user, remember=bool(request.form.get("remember")))
            record("sign_in", user, f"{user.email} signed in")
            db.session.commit()
            return redirect(next_url if asked else landing_page(user))
        error = "That e-mail and password do not match an active account."
        record("sign_in_failed", None, f"failed sign-in for {email[:254]}")
        db.session.commit()
    return render_template(
        "auth/login.html", error=error, email=email, next=next_url if asked else ""
    )


@bp.post("/logout")
def logout() -> Response:
    """Sign out (POST only, with CSRF): end this sign-in, its session and its remember cookie."""
    if current_user.is_authenticated:
        sign_in = current_sign_in()
        if sign_in is not None:
            db.session.delete(sign_in)
        record("sign_out", current_user, f"{current_user.email} signed out")
        db.session.commit()
    forget_this_browser()
    flash("You are signed out.", "info")
    return redirect(url_for("public.index"))


def landing_page(user: User) -> str:
    """Return where a sign-in without `next` leads: where this person works, not the home page."""
    return url_for("review.queue") if user.is_admin else url_for("studio.index")


def admin_required() -> None:
    """Abort with 403 unless an admin is signed in (call inside a login_required view)."""
    if not current_user.is_authenticated or not current_user.is_admin:
        abort(403)
