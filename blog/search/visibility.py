"""The one rule for what readers may see, in SQL: the list, search, feed and sitemap all use it."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ColumnElement, Select, select

from .. import clock
from ..models import Article


def is_public(now: datetime | None = None) -> ColumnElement[bool]:
    """Say in SQL that an article is visible to readers: its publish time has passed.

    Only articles.publish() sets published_at, together with published_revision_id, so this one
    column says "approved" too; it keeps the list's counts inside the (category_id, published_at)
    index instead of reading every row.
    """
    return Article.published_at <= (now or clock.now())


def public_articles(now: datetime | None = None) -> Select:
    """Select the articles readers may see now."""
    return select(Article).where(is_public(now))
