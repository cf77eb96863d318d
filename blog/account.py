"""A person's own account: change the password, see and end sign-ins, reset a forgotten password.

The reset link is a signed, timed token (itsdangerous) naming the account and a fingerprint of its
current password hash: setting any new password changes the hash, so a link works once, and
every link made before a password change stops working with it. Nothing is stored for it.
"""

from __future__ import annotations

import hashlib
from typing import Any

from flask import (
    Blueprint,
    current_app,
    flash,
    has_request_context,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_limiter.util import get_remote_address
from flask_login import current_user, login_required
from itsdangerous import BadData, SignatureExpired, URLSafeTimedSerializer
from sqlalchemy import select
from werkzeug.wrappers import Response

from .audit import record
from .auth import current_sign_in, end_other_sign_ins, forget_this_browser
from .extensions import db, limiter
from .models import SignIn, User
from .templating import absolute_url, site_request_context

bp = Blueprint("account", __name__, url_prefix="/account")

MIN_PASSWORD = 8
MAX_PASSWORD = 1024  # hashing megabytes of "password" is a cheap way to make the server work
RESET_SALT = "password-reset"
DEFAULT_RESET_MAX_AGE = 24 * 60 * 60  # seconds; PASSWORD_RESET_MAX_AGE in the config overrides it
# Guessing the current password through the change form, with a stolen session, is limited too.
PASSWORD_CHANGE_LIMIT = "5 per 5 minutes"


class ResetLinkError(Exception):
    """A reset link that cannot be used; `status` is the HTTP answer and `reason` the page's."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


@bp.after_request
def _private(response: Response) -> Response:
    """Keep account pages out of caches, and a reset token out of Referer headers."""
    response.headers["Cache-Control"] = "no-store"
    if request.endpoint == "account.reset":
        response.headers["Referrer-Policy"] = "no-referrer"
    return response


def password_problem(new: str, repeated: str) -> str | None:
    """Say what is wrong with a new password typed twice, or None when it will do."""
    if len(new) < MIN_PASSWORD:
        return f"Choose a new password of at least {MIN_PASSWORD} characters."
    if len(new) > MAX_PASSWORD:
        return f"Choose a new password of at most {MAX_PASSWORD} characters."
    if new != repeated:
        return "The two new passwords are not the same; type it again in both fields."
    return None


def _serializer() -> URLSafeTimedSerializer:
    """Return the signer for reset links, keyed by the app's secret."""
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt=RESET_SALT)


def _password_fingerprint(user: User) -> str:
    """Return a short digest of the password hash: a new password makes old links invalid."""
    return hashlib.sha256(user.password_hash.encode()).hexdigest()[:32]


def make_reset_token(user: User) -> str:
    """Return a reset token for `user`, good once and until PASSWORD_RESET_MAX_AGE passes."""
    return _serializer().dumps({"user": user.id, "password": _password_fingerprint(user)})


def reset_link(user: User) -> tuple[str, bool]:
    """Return the reset link for `user` and whether it is absolute.

    In a request (an admin's invitation) it is absolute: on SITE_URL when it is configured, else
    on the host this request came in on, which Flask has already checked against TRUSTED_HOSTS.
    The command line has no request: the link is built in one on the site's own address (never
    on "localhost", which production does not trust), absolute only when SITE_URL says where
    the site is.
    """
    token = make_reset_token(user)
    if has_request_context():
        return absolute_url("account.reset", token=token), True
    with site_request_context():
        if current_app.config.get("SITE_URL"):
            return absolute_url("account.reset", token=token), True
        return url_for("account.reset", token=token), False


def user_for_reset_token(token: str) -> User:
    """Return the account a reset token is for, or raise ResetLinkError saying why not."""
    max_age = int(current_app.config.get("PASSWORD_RESET_MAX_AGE", DEFAULT_RESET_MAX_AGE))
    try:
        payload: Any = _serializer().loads(token, max_age=max_age)
    except SignatureExpired as error:
        raise ResetLinkError(410, "This link has expired.") from error
    except BadData as error:  # forged, cut short or mangled in an e-mail client
        raise ResetLinkError(400, "This is not a valid password reset link.") from error
    if not isinstance(payload, dict) or not isinstance(payload.get("user"), int):
        raise ResetLinkError(400, "This is not a valid password reset link.")
    user = db.session.get(User, payload["user"])
    if user is None or not user.active:
        raise ResetLinkError(410, "The account this link was for is no longer active.")
    if payload.get("password") != _password_fingerprint(user):
        raise ResetLinkError(410, "This link has been used already, or the password was changed.")
    return user


def _password_change_key() -> str:
    """Key the password-change limit by account (by address for anyone not signed in)."""
    if current_user.is_authenticated:
        return f"account-password:{current_user.id}"
    return f"account-password:{get_remote_address()[:64]}"


def _failed_change(response: Response) -> bool:
    """Count only rejected password changes against the limit."""
    return response.status_code == 400


def _account_page(errors: list[str] | None = None, status: int = 200) -> tuple[str, int]:
    """Render the account page, with the form's errors if any."""
    sign_ins = db.session.scalars(
        select(SignIn)
        .filter_by(user_id=current_user.id)
        .order_by(SignIn.last_seen_at.desc(), SignIn.id.desc())
    ).all()
    this = current_sign_in()
    page = render_template(
        "account/index.html",
        sign_ins=sign_ins,
        this_sign_in_id=this.id if this is not None else None,
        errors=errors or [],
        min_password=MIN_PASSWORD,
    )
    return page, status


@bp.get("")
@login_required
def index() -> tuple[str, int]:
    """Show the signed-in person's account: password form, sign-ins, sign out everywhere."""
    return _account_page()


@bp.post("/password")
@limiter.limit(PASSWORD_CHANGE_LIMIT, key_func=_password_change_key, deduct_when=_failed_change)
@login_required
def change_password() -> Response | tuple[str, int]:
    """Change the password; every other sign-in ends, this one goes on."""
    current = request.form.get("current_password", "")
    new = request.form.get("new_password", "")
    repeated = request.form.get("new_password_again", "")
    errors = []
    if not current_user.check_password(current):
        errors.append("Your current password is not right.")
    problem = password_problem(new, repeated)
    if problem:
        errors.append(problem)
    if errors:
        return _account_page(errors, 400)
    user = current_user._get_current_object()
    user.set_password(new)
    ended = end_other_sign_ins(user)
    detail = f"{user.email} changed their password; {ended} other sign-ins ended"
    record("password_changed", user, detail)
    db.session.commit()
    flash("Your password is changed. You are signed out everywhere else.", "info")
    return redirect(url_for("account.index"))


@bp.post("/sign-out-everywhere")
@login_required
def sign_out_everywhere() -> Response:
    """End every sign-in of this account, this browser's too, and every remember cookie."""
    user = current_user._get_current_object()
    user.rotate_session_token()
    record("signed_out_everywhere", user, f"{user.email} signed out everywhere")
    db.session.commit()
    forget_this_browser()
    flash("You are signed out everywhere, on this device too.", "info")
    return redirect(url_for("auth.login"))


@bp.route("/reset/<token>", methods=["GET", "POST"])
def reset(token: str) -> Response | tuple[str, int]:
    """Let the holder of a reset link choose a new password (no sign-in needed), once."""
    try:
        user = user_for_reset_token(token)
    except ResetLinkError as error:
        page = render_template("account/reset_invalid.html", reason=error.reason)
        return page, error.status
    error = None
    if request.method == "POST":
        error = password_problem(
            request.form.get("new_password", ""), request.form.get("new_password_again", "")
        )
        if error is None:
            user.set_password(request.form["new_password"])
            user.rotate_session_token()  # whoever knew the old password is signed out
            record("password_reset", user, f"{user.email} chose a new password with a reset link")
            db.session.commit()
            forget_this_browser()
            flash("Your new password is set. Sign in with it now.", "info")
            return redirect(url_for("auth.login"))
    page = render_template(
        "account/reset.html", account=user, token=token, error=error, min_password=MIN_PASSWORD
    )
    return page, 400 if error else 200
