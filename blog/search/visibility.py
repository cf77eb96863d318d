"""The one rule for what readers may see, in SQL: the list, search, feed and sitemap all use it."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ColumnElement, Exists, Select, exists, select

from .. import clock
from ..models import Article, ArticleTag, Category, Tag


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


def category_used(where: ColumnElement[bool]) -> Exists:
    """Say in SQL that an article matching `where` is in the category."""
    return exists().where(Article.category_id == Category.id, where)


def tag_used(where: ColumnElement[bool]) -> Exists:
    """Say in SQL that an article matching `where` carries the tag."""
    return exists().where(ArticleTag.tag_id == Tag.id, ArticleTag.article_id == Article.id, where)


def category_is_public(now: datetime | None = None) -> Exists:
    """Say in SQL that readers can see an article in the category.

    Drafts create the categories they name, so until an approved article uses one its name is
    text nobody reviewed: it is no chip on the list and no filter a link can show.
    """
    return category_used(is_public(now))


def tag_is_public(now: datetime | None = None) -> Exists:
    """Say in SQL that readers can see an article with the tag.

    Readers know a tag from the articles they can read: one that only drafts carry is "no such
    tag", so a draft neither reveals its tags nor changes a public page.
    """
    return tag_used(is_public(now))
