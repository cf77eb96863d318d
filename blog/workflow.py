"""Article states and who may move them where.

    draft ──submit──▶ in_review ──approve──▶ published (or scheduled, until its time)
      ▲  ◀─withdraw──     │  │
      │                   │  ├──request changes──▶ changes_requested ──submit──▶ in_review
      └──── edit ─────────┘  └──reject──▶ rejected ──edit──▶ draft

Editing a published or scheduled article writes a new revision and puts the article back to
draft; the approved revision stays public until an admin approves the new one. A live article's
new text is approved at once, never scheduled: an article has one public copy, so scheduling
would take the live text off the site until the new one's time.

Submitting seals the revision (articles.seal): from then on its text never changes, so a decision
is always about the text the reviewer read, and each decision records that text's digest. An
approval names the revision the reviewer saw; if a newer one was saved since, it is refused.

Authors may keep editing while their article is in review (Ghost and WordPress lock the post or
warn; we warn both sides instead of locking). A lock would leave the author unable to fix the typo
they spot a minute after submitting, for as long as nobody reviews, and an admin fixing the draft
in place would need to take the lock from them. Instead nobody can decide on text they have not
read: the review page names the revision it shows, a decision on an older one is refused
(StaleRevision) and the review page comes back with the reviewer's comment kept and the diff since
the revision they read; the review page says when the author saved after submitting
(`edited_in_review`), and the editor says who is reviewing which revision (`review_notice`).

An admin can take a published article down (with a reason): it leaves the site, its URL answers
410, and it comes back only through review (submit, then approve).

Every move is a conditional UPDATE (`... WHERE id = ? AND status IN (...)`) so that when two
people decide at once exactly one wins; the loser gets a TransitionError saying what happened.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, update

from . import clock, pagecache
from .articles import latest_revision, publish, seal
from .audit import record
from .extensions import db
from .media import unseen_images
from .models import Article, ReviewEvent, Revision, Status, User
from .search import index_article

# action: (states it may start from, state it leads to, who may do it)
AUTHOR, ADMIN = "author", "admin"
TRANSITIONS: dict[str, tuple[frozenset[str], str, str]] = {
    "submit": (
        frozenset({Status.DRAFT, Status.CHANGES_REQUESTED, Status.TAKEN_DOWN}),
        Status.IN_REVIEW,
        AUTHOR,
    ),
    "withdraw": (frozenset({Status.IN_REVIEW}), Status.DRAFT, AUTHOR),
    "approve": (frozenset({Status.IN_REVIEW}), Status.PUBLISHED, ADMIN),
    "schedule": (frozenset({Status.IN_REVIEW}), Status.SCHEDULED, ADMIN),
    "request_changes": (frozenset({Status.IN_REVIEW}), Status.CHANGES_REQUESTED, ADMIN),
    "reject": (frozenset({Status.IN_REVIEW}), Status.REJECTED, ADMIN),
}
# Editing moves these states back to draft (the others keep their state while being edited).
EDIT_RESETS = frozenset({Status.PUBLISHED, Status.SCHEDULED, Status.REJECTED, Status.TAKEN_DOWN})
COMMENT_REQUIRED = frozenset({"request_changes", "reject"})
LIVE_NOT_SCHEDULED = (
    "Not done: this article is live, and scheduling its new text would take the approved one "
    "off the site until then. Approve to publish the new text now."
)
# An admin's decision names the revision and version the admin read (the review form sends them):
# one that did not skipped the check that the text is still that one, and published newer text.
UNSAID_REVISION = (
    "Not done: the request did not say which revision you read. Reload the review page, read "
    "it, then decide."
)

ACTION_LABELS = {
    "submit": "Submitted for review",
    "withdraw": "Withdrew the submission",
    "approve": "Approved and published",
    "schedule": "Approved and scheduled",
    "request_changes": "Requested changes",
    "reject": "Rejected",
    "take_down": "Took the article down",
    "comment": "Commented",
    "new_address": "Changed the address",  # of an article in review (articles.save_draft)
}


class TransitionError(Exception):
    """A move that is not allowed now; the message says why, for the person who tried.

    `field` names the form field to fix ("comment", "publish_at"), when one is to blame.
    """

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class StaleRevision(TransitionError):
    """A decision on a revision older than the newest: the text changed since it was read."""

    def __init__(self, message: str, read: int, newest: Revision) -> None:
        super().__init__(message)
        self.read = read
        self.newest = newest


@dataclass
class Decision:
    article: Article
    event: ReviewEvent


def can_edit(user: User, article: Article) -> bool:
    """Say whether a user may open an article in the editor: its author, or any admin."""
    return user.is_admin or article.author_id == user.id


def allowed_actions(user: User, article: Article) -> list[str]:
    """List the moves this user may make on this article now."""
    actions = []
    for action, (sources, _target, who) in TRANSITIONS.items():
        if article.status not in sources or (action == "schedule" and article.is_public()):
            continue
        if who == ADMIN and user.is_admin:
            actions.append(action)
        elif who == AUTHOR and can_edit(user, article):
            actions.append(action)
    return actions


def transition(
    article: Article,
    action: str,
    actor: User,
    *,
    comment: str = "",
    publish_at: datetime | None = None,
    expected_version: int | None = None,
    revision_number: int | None = None,
) -> Decision:
    """Move an article with `action` and record it as a ReviewEvent; one winner.

    Does not commit: the view or command that asked commits, so the decision and whatever else
    its request changed land together (the conditional UPDATE's row lock is held until then).

    `revision_number` is the revision the person deciding has read, `expected_version` the
    article's version then: when a newer revision was saved since, or anything else changed,
    nothing happens and they are told, so nobody approves text they have not seen. An admin's
    decision must give both (UNSAID_REVISION).
    """
    if action not in TRANSITIONS:
        raise TransitionError(f"Unknown action “{action}”.")
    sources, target, who = TRANSITIONS[action]
    if who == ADMIN and not actor.is_admin:
        raise TransitionError("Only an admin can do that.")
    if who == AUTHOR and not can_edit(actor, article):
        raise TransitionError("Only the author can do that.")
    if who == ADMIN and (revision_number is None or expected_version is None):
        raise TransitionError(UNSAID_REVISION)
    comment = comment.strip()
    if action in COMMENT_REQUIRED and not comment:
        raise TransitionError(
            "Please say why in the comment: the author will read it.", field="comment"
        )
    if action == "schedule":
        if publish_at is None:
            raise TransitionError("Choose the date and time to publish at.", field="publish_at")
        if publish_at <= clock.now():
            raise TransitionError("The publish time must be in the future.", field="publish_at")
        if article.is_public():
            # publish() replaces the public copy: the live text would go now, the new one later.
            raise TransitionError(LIVE_NOT_SCHEDULED)
    revision = latest_revision(article)
    if revision is None:
        raise TransitionError("The article has no saved text yet.")
    if action == "submit" and not revision.body.strip():
        raise TransitionError("Write the article before submitting it.")
    if revision_number is not None and revision.number != revision_number:
        raise StaleRevision(
            f"Not done: the text changed since you opened it (revision {revision_number}); "
            f"{revision.created_by.name} saved revision {revision.number}. Read it, then decide.",
            revision_number,
            revision,
        )
    if action in ("approve", "schedule") and (unseen := unseen_images(revision.body)):
        raise TransitionError(_unseen_message(unseen))

    # The conditional update is the lock: only one request can move the article out of `sources`.
    conditions = [Article.id == article.id, Article.status.in_(sources)]
    if expected_version is not None:
        conditions.append(Article.version == expected_version)
    moved = db.session.execute(
        update(Article)
        .where(*conditions)
        .values(status=target, version=Article.version + 1, updated_at=clock.now())
        .execution_options(synchronize_session=False)
    ).rowcount
    if moved != 1:
        db.session.rollback()
        db.session.refresh(article)
        raise TransitionError(_lost_race_message(article, action))
    db.session.refresh(article)

    if action in ("approve", "schedule"):
        publish(article, revision, actor, publish_at=publish_at if action == "schedule" else None)
    elif action == "submit":
        seal(revision)
    event = ReviewEvent(
        article_id=article.id,
        revision_id=revision.id,
        actor=actor,
        action=action,
        comment=comment,
        publish_at=publish_at,
        digest=revision.digest if action != "withdraw" else None,
    )
    db.session.add(event)
    record(action, actor, f"{ACTION_LABELS[action]}: {article.slug} (revision {revision.number})")
    return Decision(article, event)


def _unseen_message(unseen: list[str]) -> str:
    """Say which images block an approval (media.unseen_images) and what to do."""
    if len(unseen) == 1:
        what, them = f"the image {unseen[0]} in this text answers", "it"
    else:
        listed = ", ".join(unseen[:3]) + (", …" if len(unseen) > 3 else "")
        what, them = f"{len(unseen)} images in this text ({listed}) answer", "them"
    return (
        f"Not approved: {what} nothing here, so nobody can see what readers would. Ask the "
        f"author to upload {them}, or to take {them} out."
    )


def _lost_race_message(article: Article, action: str) -> str:
    """Explain to the loser of a race what the winner did."""
    last = db.session.scalar(
        select(ReviewEvent)
        .where(ReviewEvent.article_id == article.id)
        .order_by(ReviewEvent.created_at.desc(), ReviewEvent.id.desc())
        .limit(1)
    )
    state = article.status.replace("_", " ")
    if last is None:
        return f"Not done: the article changed in the meantime and is now {state}."
    when = last.created_at.strftime("%H:%M:%S UTC")
    if last.action == "new_address":
        return (
            f"Not done: {last.actor.name} changed its address to /articles/{article.slug} at "
            f"{when}, after you opened the page: read it again, then decide."
        )
    if last.action in ("submit", "withdraw"):
        # Not a decision: the author moved it (withdrew, resubmitted) after the page was opened.
        return (
            f"Not done: {last.actor.name} {ACTION_LABELS[last.action].lower()} at {when}, "
            f"after you opened the page. The article is now {state}: read it again, then decide."
        )
    return (
        f"Not done: {last.actor.name} already made a decision at {when} "
        f"({ACTION_LABELS.get(last.action, last.action).lower()}). The article is now {state}."
    )


def enter_review(
    article: Article,
    revision: Revision,
    actor: User,
    comment: str = "",
    at: datetime | None = None,
) -> None:
    """Put a newly arrived draft (API, import, demo) in the review queue, recording it."""
    article.status = Status.IN_REVIEW
    seal(revision)
    db.session.add(
        ReviewEvent(
            article_id=article.id,
            revision_id=revision.id,
            actor=actor,
            action="submit",
            comment=comment,
            created_at=at or clock.now(),
            digest=revision.digest,
        )
    )


def approve_as_of(article: Article, revision: Revision, reviewer: User, at: datetime) -> None:
    """Record an approval made at `at` and publish from then (the demo's backdated articles).

    transition() decides at the present moment; a seed blog needs decisions from its past.
    """
    db.session.add(
        ReviewEvent(
            article_id=article.id,
            revision_id=revision.id,
            actor=reviewer,
            action="approve",
            created_at=at,
            digest=revision.digest,
        )
    )
    publish(article, revision, reviewer, publish_at=at)
    article.status = Status.PUBLISHED
    article.reviewed_at = article.updated_at = at


def publish_without_review(
    article: Article, revision: Revision, actor: User, at: datetime | None = None
) -> None:
    """Publish a human-written imported revision at `at` (now when None), scheduled if ahead.

    Only the import command does this: whoever runs it holds the server. AI-written files go
    through enter_review instead.
    """
    publish(article, revision, reviewer=actor, publish_at=at)
    future = article.published_at is not None and article.published_at > clock.now()
    article.status = Status.SCHEDULED if future else Status.PUBLISHED


def back_to_draft(article: Article) -> None:
    """Make an article a draft again (an imported file that says `draft: true`)."""
    article.status = Status.DRAFT


def take_down(article: Article, actor: User, reason: str) -> ReviewEvent:
    """Unpublish an article with a reason (audited); its URL answers 410 until it is re-approved.

    Like every decision it is a conditional UPDATE, so it cannot cross an approval in flight.
    Does not commit: the caller does, with the search index change made here.
    """
    if not actor.is_admin:
        raise TransitionError("Only an admin can take an article down.")
    reason = reason.strip()
    if not reason:
        raise TransitionError("Say why the article is taken down: it goes into the audit log.")
    now = clock.now()
    published_revision_id = article.published_revision_id  # the text readers lose: the event's
    moved = db.session.execute(
        update(Article)
        .where(Article.id == article.id, Article.published_revision_id.is_not(None))
        .values(
            status=Status.TAKEN_DOWN,
            published_at=None,
            published_revision_id=None,
            taken_down_at=now,
            taken_down_reason=reason[:2000],
            version=Article.version + 1,
            updated_at=now,
        )
        .execution_options(synchronize_session=False)
    ).rowcount
    if moved != 1:
        db.session.rollback()
        raise TransitionError("Not done: the article is not published (any more).")
    db.session.refresh(article)
    index_article(article)  # no published revision: this removes it from search
    pagecache.public_changed()  # readers' pages turn over when this commits
    event = ReviewEvent(
        article_id=article.id,
        revision_id=published_revision_id,  # what was taken down: a re-review compares with it
        actor=actor,
        action="take_down",
        comment=reason,
    )
    db.session.add(event)
    record("take_down", actor, f"{ACTION_LABELS['take_down']}: {article.slug}: {reason}")
    return event


def after_edit(article: Article) -> None:
    """Put an edited article back to draft when it was published, scheduled or rejected."""
    if article.status in EDIT_RESETS:
        article.status = Status.DRAFT


def history(article: Article) -> list[ReviewEvent]:
    """Return an article's decisions and comments, oldest first."""
    return list(
        db.session.scalars(
            select(ReviewEvent)
            .where(ReviewEvent.article_id == article.id)
            .order_by(ReviewEvent.created_at, ReviewEvent.id)
        )
    )


def revision_by_number(article: Article, number: int) -> Revision | None:
    """Return one revision of an article by its number."""
    return db.session.scalar(
        select(Revision).where(Revision.article_id == article.id, Revision.number == number)
    )


def submitted_revision(article: Article) -> Revision | None:
    """Return the revision the author last submitted (what the reviewer was asked to read)."""
    return db.session.scalar(
        select(Revision)
        .join(ReviewEvent, ReviewEvent.revision_id == Revision.id)
        .where(ReviewEvent.article_id == article.id, ReviewEvent.action == "submit")
        .order_by(ReviewEvent.created_at.desc(), ReviewEvent.id.desc())
        .limit(1)
    )


def edited_in_review(article: Article, newest: Revision | None) -> Revision | None:
    """Return the submitted revision when someone saved a newer one while in review, else None."""
    if article.status != Status.IN_REVIEW or newest is None:
        return None
    submitted = submitted_revision(article)
    if submitted is None or submitted.number >= newest.number:
        return None
    return submitted


def review_notice(article: Article) -> str | None:
    """Tell the editor's user that the article is in review and what their edits will do."""
    if article.status != Status.IN_REVIEW:
        return None
    newest = latest_revision(article)
    submitted = submitted_revision(article)
    if newest is None or submitted is None:
        return None
    if newest.number == submitted.number:
        return (
            f"In review: revision {submitted.number} is waiting for a reviewer. Your next save "
            f"makes revision {newest.number + 1}; the reviewer is told and shown what changed."
        )
    return (
        f"In review: revision {submitted.number} was submitted; revision {newest.number} has been "
        "saved since. The reviewer is told and shown what changed, and decides on the newest text."
    )
