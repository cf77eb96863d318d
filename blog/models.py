"""The data model: people, articles with their revisions, decisions, tokens and the audit log.

An Article row is what readers see: its title, summary, tags, body and rendered HTML are the
published snapshot, copied from a Revision when an admin approves it (and, before it is ever
published, kept in step with the latest revision so the studio and the review queue can list it).
Every save is a Revision; the working text is always the newest one. Editing a published article
therefore never changes the public page until the new revision is approved.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import UTC, datetime
from enum import StrEnum

from flask_login import UserMixin
from sqlalchemy import (
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    event,
    inspect,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship
from werkzeug.security import check_password_hash, generate_password_hash

from . import clock
from .extensions import db


def utcnow() -> datetime:
    """Column default for "when": the one clock (blog.clock), for rows created without a time.

    Code asks `clock.now()`; this wrapper exists because a column default is bound when the
    model is defined, and looking `clock.now` up at each call lets a test's fixed clock apply.
    """
    return clock.now()


def last_public_change(
    published_at: datetime | None, reviewed_at: datetime | None
) -> datetime | None:
    """Return the later of an article's publish time and its last approval."""
    known = [moment for moment in (published_at, reviewed_at) if moment is not None]
    return max(known, default=None)


class UTCDateTime(TypeDecorator[datetime]):
    """Store datetimes as naive UTC (SQLite has no zones) and hand them back aware."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: object) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given; use an aware UTC datetime")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: object) -> datetime | None:
        return None if value is None else value.replace(tzinfo=UTC)


class Role(StrEnum):
    AUTHOR = "author"
    ADMIN = "admin"


class Status(StrEnum):
    """Where the newest revision of an article stands in the review workflow."""

    DRAFT = "draft"
    IN_REVIEW = "in_review"
    CHANGES_REQUESTED = "changes_requested"
    SCHEDULED = "scheduled"
    PUBLISHED = "published"
    REJECTED = "rejected"
    TAKEN_DOWN = "taken_down"  # unpublished by an admin; its URL answers 410 until re-approved


class User(UserMixin, db.Model):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    name: Mapped[str] = mapped_column(String(120))
    role: Mapped[str] = mapped_column(String(16), default=Role.AUTHOR)
    password_hash: Mapped[str] = mapped_column(String(255))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    # Part of the session cookie's identity: rotating it signs the user out everywhere.
    session_token: Mapped[str] = mapped_column(String(64), default=lambda: secrets.token_hex(16))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # The raw token of the sign-in this object was loaded for (blog.auth sets it; not a column).
    sign_in_token = None

    @property
    def is_admin(self) -> bool:
        """Say whether the user may review and publish."""
        return self.role == Role.ADMIN

    @property
    def is_active(self) -> bool:  # Flask-Login reads this on every request
        return self.active

    def get_id(self) -> str:
        """Identify the user in the session and remember cookie: id, session and sign-in token."""
        return f"{self.id}:{self.session_token}:{self.sign_in_token or ''}"

    def set_password(self, password: str) -> None:
        """Hash and store a new password (Werkzeug's scrypt)."""
        self.password_hash = generate_password_hash(password, method="scrypt")

    def check_password(self, password: str) -> bool:
        """Check a password against the stored hash."""
        return check_password_hash(self.password_hash, password)

    def rotate_session_token(self) -> None:
        """End every session this user has open, and forget their sign-ins."""
        self.session_token = secrets.token_hex(16)
        db.session.execute(SignIn.__table__.delete().where(SignIn.user_id == self.id))


class Category(db.Model):
    __tablename__ = "categories"

    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(String(80), unique=True)
    name: Mapped[str] = mapped_column(String(80), unique=True)
    position: Mapped[int] = mapped_column(Integer, default=0)


class Tag(db.Model):
    __tablename__ = "tags"

    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(String(80), unique=True)
    name: Mapped[str] = mapped_column(String(80))


class ArticleTag(db.Model):
    """A tag on an article, in the order the writer gave them (the card shows the first three)."""

    __tablename__ = "article_tags"
    # "The newest articles with this tag" straight from the index (related articles, tag filter).
    __table_args__ = (Index("ix_article_tags_tag_article", "tag_id", "article_id"),)

    article_id: Mapped[int] = mapped_column(
        ForeignKey("articles.id", ondelete="CASCADE"), primary_key=True
    )
    tag_id: Mapped[int] = mapped_column(ForeignKey("tags.id"), primary_key=True)
    position: Mapped[int] = mapped_column(Integer, default=0)

    tag: Mapped[Tag] = relationship(lazy="joined")


class Article(db.Model):
    __tablename__ = "articles"
    __table_args__ = (
        Index("ix_articles_public", "published_at"),
        Index("ix_articles_category_public", "category_id", "published_at"),
        # Search joins every FTS match to its article: this index answers the join's filters
        # without reading the (large) row, 0.84 s -> 0.28 s for 88,000 matches.
        Index("ix_articles_listing", "id", "published_at", "category_id", "ai_generated"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(String(200), unique=True)
    author_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    status: Mapped[str] = mapped_column(String(24), default=Status.DRAFT, index=True)
    # Part of the published snapshot: the published revision's, not the working one's.
    ai_generated: Mapped[bool] = mapped_column(Boolean, default=False)
    ai_model: Mapped[str | None] = mapped_column(String(120))
    ai_prompt: Mapped[str | None] = mapped_column(Text)  # what the AI tool was asked, if it said
    # The published snapshot (see the module docstring).
    title: Mapped[str] = mapped_column(String(300))
    summary: Mapped[str] = mapped_column(Text, default="")
    category_id: Mapped[int | None] = mapped_column(ForeignKey("categories.id"))
    body: Mapped[str] = mapped_column(Text, default="")
    body_html: Mapped[str] = mapped_column(Text, default="")
    reading_minutes: Mapped[int] = mapped_column(Integer, default=1)
    # Public when published_at is set and has passed: scheduling needs no cron job. Only
    # articles.publish() sets it, always with published_revision_id (search.is_public relies on it).
    published_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    published_revision_id: Mapped[int | None] = mapped_column(
        ForeignKey("revisions.id", use_alter=True, name="fk_articles_published_revision")
    )
    reviewed_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), index=True)
    reviewed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Of the published text's words, the percentage kept from the AI's original (None: no AI
    # original to compare with). Decides the machine-readable disclosure: see provenance.py.
    ai_share: Mapped[int | None] = mapped_column(Integer)
    # Set when an admin takes the article down (its URL then answers 410), cleared on re-approval.
    taken_down_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    taken_down_reason: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    # Bumped by every save and decision; an edit or a decision names the version it started from.
    version: Mapped[int] = mapped_column(Integer, default=1)

    author: Mapped[User] = relationship(foreign_keys=[author_id], lazy="joined")
    reviewed_by: Mapped[User | None] = relationship(foreign_keys=[reviewed_by_id], lazy="joined")
    category: Mapped[Category | None] = relationship(lazy="joined")
    tag_links: Mapped[list[ArticleTag]] = relationship(
        order_by=ArticleTag.position, cascade="all, delete-orphan", lazy="selectin"
    )
    revisions: Mapped[list[Revision]] = relationship(
        back_populates="article",
        foreign_keys="Revision.article_id",
        order_by="Revision.number",
        cascade="all, delete-orphan",
        lazy="select",
    )

    @property
    def tags(self) -> list[Tag]:
        """Return the article's published tags in order."""
        return [link.tag for link in self.tag_links]

    @property
    def public_updated_at(self) -> datetime | None:
        """Say when readers' text last changed: its approval, or its (scheduled) publish time.

        Not updated_at, which every private save bumps: feeds and sitemaps must not reveal that
        someone is editing a published article before the new text is approved.
        """
        return last_public_change(self.published_at, self.reviewed_at)

    @property
    def keeps_address(self) -> bool:
        """Say whether the slug is fixed: once approved (live or scheduled) or taken down.

        Links to it are out there (or, taken down, its address answers "gone" and a re-approval
        brings it back there); before that the author may change it freely.
        """
        return self.published_revision_id is not None or self.taken_down_at is not None

    @property
    def approved_behind_newer_text(self) -> bool:
        """Say whether an approved text stands (live or scheduled) while the article is elsewhere
        in its workflow: a newer draft, a submission, changes requested."""
        return self.published_revision_id is not None and self.status not in (
            Status.PUBLISHED,
            Status.SCHEDULED,
        )

    def is_public(self, now: datetime | None = None) -> bool:
        """Say whether readers can see the article now."""
        if self.published_revision_id is None or self.published_at is None:
            return False
        return self.published_at <= (now or clock.now())


class SealedRevisionError(RuntimeError):
    """Something tried to change the text of a revision that was submitted or approved."""


class Revision(db.Model):
    """One saved version of an article.

    Only an autosave that nobody has submitted yet is ever rewritten (it folds one editing
    session's keystrokes). Once a revision is submitted or approved it is sealed: its text is
    what the review history and the public label point at, and a mapper event refuses any change.
    """

    __tablename__ = "revisions"
    __table_args__ = (UniqueConstraint("article_id", "number"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    article_id: Mapped[int] = mapped_column(ForeignKey("articles.id", ondelete="CASCADE"))
    number: Mapped[int] = mapped_column(Integer)
    title: Mapped[str] = mapped_column(String(300))
    summary: Mapped[str] = mapped_column(Text, default="")
    category_name: Mapped[str] = mapped_column(String(80), default="")
    tags: Mapped[str] = mapped_column(Text, default="")  # comma-separated, in order
    body: Mapped[str] = mapped_column(Text, default="")
    # How this text was made: publishing copies it to the article with the text itself, so the
    # public label always describes the public text.
    ai_generated: Mapped[bool] = mapped_column(Boolean, default=False)
    ai_model: Mapped[str | None] = mapped_column(String(120))
    # ai_original, import, edit, autosave, restore, merge
    kind: Mapped[str] = mapped_column(String(24), default="edit")
    note: Mapped[str] = mapped_column(String(300), default="")
    created_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # An autosave keeps updating its own revision until the editing session ends.
    editing_session: Mapped[str | None] = mapped_column(String(64))
    # SHA-256 of source_text(): what an approval records and what readers can check.
    digest: Mapped[str] = mapped_column(String(64), default="")
    # When the revision was first submitted or approved; from then on its text never changes.
    sealed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The review queue's flags for this text (a JSON list), computed once; None: not yet.
    check_flags: Mapped[str | None] = mapped_column(Text)

    article: Mapped[Article] = relationship(back_populates="revisions", foreign_keys=[article_id])
    created_by: Mapped[User] = relationship(lazy="joined")
    # The image hashes the text names (fill_revision keeps them with it), for where_used.
    images: Mapped[list[RevisionImage]] = relationship(
        cascade="all, delete-orphan", passive_deletes=True
    )

    @property
    def tag_names(self) -> list[str]:
        """Return the revision's tags as a list."""
        return stored_tag_names(self.tags)

    @property
    def sealed(self) -> bool:
        """Say whether the text is frozen (submitted or approved at some point)."""
        return self.sealed_at is not None


def stored_tag_names(tags: str) -> list[str]:
    """Read back a revision's `tags` column ("a, b", as articles.split_tags joined them)."""
    return [name.strip() for name in tags.split(",") if name.strip()]


class RevisionImage(db.Model):
    """One image hash a revision's text names: which articles show an image, found by index.

    The media page and the delete check ask where each image is used. Reading the text of every
    article that could show one cost seconds at tens of thousands of articles, so the hashes
    are written with the text (fill_revision, the importer) and looked up by hash.
    """

    __tablename__ = "revision_images"

    revision_id: Mapped[int] = mapped_column(
        ForeignKey("revisions.id", ondelete="CASCADE"), primary_key=True
    )
    sha256: Mapped[str] = mapped_column(String(64), primary_key=True, index=True)


# What a sealed revision must keep: everything but the cached check flags.
SEALED_COLUMNS = (
    "article_id", "number", "title", "summary", "category_name", "tags", "body", "ai_generated",
    "ai_model", "kind", "note", "created_by_id", "created_at", "editing_session", "digest",
    "sealed_at",
)  # fmt: skip


@event.listens_for(Revision, "before_update")
def _refuse_changes_to_sealed_revisions(
    _mapper: object, _connection: object, target: Revision
) -> None:
    """Stop any flush that would rewrite a revision sealed before this unit of work began."""
    state = inspect(target)
    sealed_history = state.attrs.sealed_at.history
    was_sealed = any(
        value is not None for value in (*sealed_history.deleted, *sealed_history.unchanged)
    )
    if not was_sealed:
        return
    changed = [name for name in SEALED_COLUMNS if state.attrs[name].history.has_changes()]
    if changed:
        raise SealedRevisionError(
            f"revision {target.number} of article {target.article_id} is sealed; "
            f"refused a change to {', '.join(changed)}"
        )


class ReviewEvent(db.Model):
    """A decision or comment on an article: who, when, on which revision, and why."""

    __tablename__ = "review_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    article_id: Mapped[int] = mapped_column(
        ForeignKey("articles.id", ondelete="CASCADE"), index=True
    )
    revision_id: Mapped[int | None] = mapped_column(ForeignKey("revisions.id"))
    actor_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    # submit, withdraw, approve, schedule, request_changes, reject, take_down, comment
    action: Mapped[str] = mapped_column(String(24))
    comment: Mapped[str] = mapped_column(Text, default="")
    publish_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The decided revision's digest at the moment of the decision (submit, approve, schedule...).
    digest: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    actor: Mapped[User] = relationship(lazy="joined")
    revision: Mapped[Revision | None] = relationship()


class ApiToken(db.Model):
    """A bearer token for the drafts API. Only a SHA-256 of the secret is stored."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    name: Mapped[str] = mapped_column(String(120), default="")
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    user: Mapped[User] = relationship(lazy="joined")


class IdempotentResponse(db.Model):
    """The first answer to a request carrying an Idempotency-Key, replayed on a retry."""

    __tablename__ = "idempotent_responses"
    __table_args__ = (UniqueConstraint("token_id", "key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    token_id: Mapped[int] = mapped_column(ForeignKey("api_tokens.id", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(String(200))
    request_hash: Mapped[str] = mapped_column(String(64))
    status_code: Mapped[int] = mapped_column(Integer)
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class AuditEntry(db.Model):
    """A line of the audit log: sign-ins, decisions, token use, account changes."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(primary_key=True)
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    action: Mapped[str] = mapped_column(String(40), index=True)
    detail: Mapped[str] = mapped_column(Text, default="")
    remote_addr: Mapped[str] = mapped_column(String(64), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)

    actor: Mapped[User | None] = relationship(lazy="joined")


class SignIn(db.Model):
    """One sign-in: a browser's session and its "remember me" cookie. Signing out deletes it.

    Its token is part of the identity both cookies carry (User.get_id), so once the row is gone a
    kept copy of either cookie signs nobody in. Only a SHA-256 of the token is stored.
    """

    __tablename__ = "sign_ins"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # Updated at most every few minutes (see blog.auth), so a page view rarely writes.
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # What the account page shows, so a person can recognise a sign-in that is not theirs.
    user_agent: Mapped[str] = mapped_column(String(200), default="")
    remote_addr: Mapped[str] = mapped_column(String(64), default="")
    remember: Mapped[bool] = mapped_column(Boolean, default=False)

    @staticmethod
    def hash_token(token: str) -> str:
        """Return the digest a sign-in token is stored and looked up by."""
        return hashlib.sha256(token.encode()).hexdigest()


class Media(db.Model):
    """An uploaded image: its content hash names the stored files, so their URLs never change.

    The original (re-encoded, without metadata) is `<sha256>.<ext>`; each width in `widths` is a
    WebP at `<sha256>-<width>.webp` (blog/media.py makes them, blog/storage.py keeps them).

    A row is one person's upload: the same picture uploaded by two authors is two rows sharing
    one set of files, so it is in each one's list and either may delete theirs; the files go
    with the last row (one author was handed the other's row, and lost the picture when the
    other deleted it). An import's pictures (no uploader) share one row, as one person's do:
    a unique key lets NULLs differ, so a partial index keeps them to one (two imports at once
    each added a row).
    """

    __tablename__ = "media"
    __table_args__ = (
        UniqueConstraint("sha256", "uploaded_by_id", name="uq_media_sha256_uploader"),
        Index(
            "uq_media_sha256_imported",
            "sha256",
            unique=True,
            sqlite_where=text("uploaded_by_id IS NULL"),
            postgresql_where=text("uploaded_by_id IS NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    sha256: Mapped[str] = mapped_column(String(64))
    ext: Mapped[str] = mapped_column(String(8))  # jpg, png, webp, gif, avif
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    bytes: Mapped[int] = mapped_column(Integer)  # of the stored original
    widths: Mapped[str] = mapped_column(String(100), default="")  # comma-separated
    uploaded_by_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), index=True
    )
    # The article it was uploaded for (None: through the API or an import without one).
    article_id: Mapped[int | None] = mapped_column(
        ForeignKey("articles.id", ondelete="SET NULL"), index=True
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    uploaded_by: Mapped[User | None] = relationship(lazy="joined")

    @property
    def key(self) -> str:
        """Return the storage key (and URL file name) of the original."""
        return f"{self.sha256}.{self.ext}"

    @property
    def variant_widths(self) -> list[int]:
        """Return the widths of the WebP variants, narrowest first."""
        return [int(w) for w in self.widths.split(",") if w]
