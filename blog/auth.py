"""Sign-in and sign-out: hashed passwords, session renewal, rate limits and a safe `next`."""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import (
    Blueprint,
    Flask,
    abort,
    flash,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_login import current_user, login_user, logout_user
from sqlalchemy import select
from werkzeug.wrappers import Response

from .audit import record
from .extensions import db, limiter, login_manager
from .models import User

bp = Blueprint("auth", __name__)

# Failed sign-ins: per account (stops guessing one password from many addresses) and per address
# (stops spraying many accounts). Short windows, so an attacker cannot lock a real user out long.
ACCOUNT_LIMIT = "5 per 5 minutes"
ADDRESS_LIMIT = "20 per 5 minutes"


def init_app(app: Flask) -> None:
    """Configure Flask-Login for this app."""
    login_manager.login_view = "auth.login"
    login_manager.login_message = "Please sign in to continue."
    login_manager.login_message_category = "info"
    login_manager.session_protection = "basic"


@login_manager.user_loader
def load_user(user_id: str) -> User | None:
    """Load the signed-in user; a stale session token or a deactivated account gets nobody."""
    ident, _, token = user_id.partition(":")
    if not ident.isdigit() or not token:
        return None
    user = db.session.get(User, int(ident))
    if user is None or not user.active or user.session_token != token:
        return None
    return user


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
    return "login-account:" + request.form.get("email", "").strip().lower()


def _failed_only(response: Response) -> bool:
    """Count only failed attempts against the limits (a 200 re-shows the form with an error)."""
    return response.status_code == 200 and request.method == "POST"


@bp.route("/login", methods=["GET", "POST"])
@limiter.limit(ACCOUNT_LIMIT, key_func=_account_key, methods=["POST"], deduct_when=_failed_only)
@limiter.limit(ADDRESS_LIMIT, methods=["POST"], deduct_when=_failed_only)
def login() -> Response | str:
    """Show the sign-in form and sign the user in."""
    next_url = safe_next(request.values.get("next"))
    if current_user.is_authenticated:
        return redirect(next_url)
    error = None
    email = ""
    if request.method == "POST":
        email = request.form.get("email", "").strip().lower()
        password = request.form.get("password", "")
        user = db.session.scalar(select(User).filter_by(email=email)) if email else None
        if user is not None and user.active and user.check_password(password):
            session.clear()  # a new session at sign-in: nothing planted before survives
            login_user(user, remember=bool(request.form.get("remember")))
            record("sign_in", user, f"{user.email} signed in")
            db.session.commit()
            return redirect(next_url)
        error = "That e-mail and password do not match an active account."
        record("sign_in_failed", None, f"failed sign-in for {email[:254]}")
        db.session.commit()
    return render_template("auth/login.html", error=error, email=email, next=next_url)


@bp.post("/logout")
def logout() -> Response:
    """Sign out (POST only, with CSRF, so a link on another site cannot do it)."""
    if current_user.is_authenticated:
        logout_user()
    session.clear()
    flash("You are signed out.", "info")
    return redirect(url_for("public.index"))


def admin_required() -> None:
    """Abort with 403 unless an admin is signed in (call inside a login_required view)."""
    if not current_user.is_authenticated or not current_user.is_admin:
        abort(403)
