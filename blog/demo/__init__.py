"""The demo blog: the seed page's eight articles, their reviewer and an author."""

from __future__ import annotations

import json
import os
import secrets
from datetime import UTC, date, datetime
from pathlib import Path

from flask import current_app
from sqlalchemy import func, select

from ..articles import Draft, create_article, get_category
from ..extensions import db
from ..frontmatter import parse
from ..models import Article, Role, User
from ..workflow import approve_as_of, enter_review

ARTICLES = Path(__file__).parent / "articles"
# The seed page's chips, in its order.
CATEGORIES = ["Backend", "Security", "Database", "Frontend", "DevOps", "Machine Learning"]
REVIEWER = ("dennis@example.com", "Dennis Atonya", Role.ADMIN)
AUTHOR = ("maya@example.com", "Maya Okafor", Role.AUTHOR)


def credentials_path() -> Path:
    """Where the demo passwords live: instance/, never git."""
    return Path(current_app.instance_path) / "demo-credentials.json"


def demo_credentials() -> dict[str, str | None] | None:
    """Return the demo accounts' e-mails and passwords, if the demo was loaded here.

    A password is None once it no longer signs in (changed with `flask user set-password` or on
    /account, or the account deactivated): the file keeps what was generated, and printing
    that would send people to a sign-in that fails.
    """
    path = credentials_path()
    if not path.exists():
        return None
    generated: dict[str, str] = json.loads(path.read_text())
    users = db.session.scalars(select(User).where(User.email.in_(generated)))
    accounts = {user.email: user for user in users}
    return {
        email: password if _signs_in(accounts.get(email), password) else None
        for email, password in generated.items()
    }


def _signs_in(user: User | None, password: str) -> bool:
    return user is not None and user.active and user.check_password(password)


def _user(email: str, name: str, role: str, password: str) -> User:
    user = db.session.scalar(select(User).filter_by(email=email))
    if user is None:
        user = User(email=email, name=name, role=role)
        user.set_password(password)
        db.session.add(user)
        db.session.flush()
    return user


def _datetime(value: object) -> datetime:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day, 9, tzinfo=UTC)
    return datetime.fromisoformat(str(value).replace("Z", "+00:00"))


def load_demo() -> int:
    """Create the demo accounts and publish the demo articles, unless articles exist already."""
    if db.session.scalar(select(func.count()).select_from(Article)):
        return 0
    path = credentials_path()
    if path.exists():
        passwords = json.loads(path.read_text())
    else:
        passwords = {REVIEWER[0]: secrets.token_urlsafe(12), AUTHOR[0]: secrets.token_urlsafe(12)}
    reviewer = _user(*REVIEWER, password=passwords[REVIEWER[0]])
    author = _user(*AUTHOR, password=passwords[AUTHOR[0]])
    for name in CATEGORIES:
        get_category(name)
    db.session.flush()

    count = 0
    for file in sorted(ARTICLES.glob("*.md")):
        document = parse(file.read_text(encoding="utf-8"))
        meta = document.meta
        draft = Draft(
            title=meta["title"],
            body=document.body.lstrip("\n"),
            summary=meta.get("summary", ""),
            category=meta.get("category", ""),
            tags=list(meta.get("tags", [])),
            slug=meta.get("slug", ""),
        )
        article, original = create_article(
            draft, author, ai_generated=True, ai_model=meta.get("ai_model"), kind="ai_original"
        )
        published_at = _datetime(meta["date"])
        article.created_at = published_at
        enter_review(article, original, author, at=published_at)
        approve_as_of(article, original, reviewer, published_at)  # on the seed's date
        count += 1
    db.session.commit()
    if not path.exists():
        # Created readable by the owner only, never world-readable even for a moment.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            json.dump(passwords, handle, indent=2)
    return count
