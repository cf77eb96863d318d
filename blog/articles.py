"""Writing articles: revisions, tags, categories, and copying an approved revision to the public.

Views, the API, the importer and the demo loader all go through these functions, so there is one
way a revision is written and one way the public snapshot changes. Nothing here commits: the view
or command that called decides when the unit of work ends.

Two promises hold here for every caller. A revision that was submitted or approved is sealed and
never written again (models.Revision refuses it at flush time as a last line of defence). And an
article that began as an AI draft stays labelled AI-generated, whatever a later edit says.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Collection
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from sqlalchemy import and_, delete, exists, func, insert, or_, select, update

from . import clock, pagecache
from .audit import record
from .content import (
    MAX_BODY_CHARS,
    MAX_BODY_TABLE_CELLS,
    MAX_TABLE_CELLS,
    image_hashes,
    render,
    slugify,
    table_cut,
    term_slug,
)
from .database import IN_LIST_MAX, NUL, insert_unless_taken
from .diff import word_counts
from .extensions import db
from .models import (
    Article,
    ArticleTag,
    Category,
    ReviewEvent,
    Revision,
    RevisionImage,
    Status,
    Tag,
    User,
)
from .retry import retry_unique
from .search import index_article

MAX_TAGS = 12
TITLE_MAX = 300
# A summary is a sentence or two on every card; the API and the editor's box take 1,000.
SUMMARY_MAX = 1000
# A form's tags as typed ("a, b, c"): 12 tags of 80 characters fit with room to spare. A longer
# field is refused before it is split and slugged, which took seconds for megabytes.
TAGS_FIELD_MAX = 2000
SLUG_MAX = 190


@dataclass
class Draft:
    """The fields a writer controls, as typed in a form, the API or a front matter file."""

    title: str
    body: str
    summary: str = ""
    category: str = ""
    tags: list[str] = field(default_factory=list)
    slug: str = ""
    ai_generated: bool = False
    ai_model: str = ""

    def problems(self) -> dict[str, str]:
        """Say what is wrong with the fields, field by field (empty when all is well).

        Judged as they will be stored: a title of NUL characters only is an empty title.
        """
        if any(NUL in value for value in (self.title, self.body, self.summary, self.category)):
            return self.without_nul().problems()
        found: dict[str, str] = {}
        if not self.title.strip():
            found["title"] = "A title is required."
        elif len(self.title.strip()) > TITLE_MAX:
            found["title"] = f"The title is longer than {TITLE_MAX} characters."
        if len(self.summary.strip()) > SUMMARY_MAX:
            found["summary"] = f"The summary is longer than {SUMMARY_MAX:,} characters."
        if not self.body.strip():
            found["body"] = "The article has no text."
        elif len(self.body) > MAX_BODY_CHARS:
            # Rendering hostile Markdown costs up to ~40 µs a character: see content.py.
            found["body"] = f"The body is longer than {MAX_BODY_CHARS:,} characters."
        elif cut := table_cut(self.body):  # the rows past a limit would show as text
            found["body"] = (
                f"A table has more than {MAX_TABLE_CELLS:,} cells (rows × columns, short rows "
                "filled in): split it into smaller tables."
                if cut == "one"
                else f"The tables have more than {MAX_BODY_TABLE_CELLS:,} cells in all (rows × "
                "columns, short rows filled in): move some into another article."
            )
        if self.slug and slugify(self.slug) != self.slug:
            found["slug"] = "A slug may hold only lower-case letters, digits and hyphens."
        tags = split_tags(self.tags)  # as they will be stored: "a, b" in a list is two tags
        if len(tags) > MAX_TAGS:
            found["tags"] = f"At most {MAX_TAGS} tags."
        if len(self.category) > 80:
            found["category"] = "The category name is longer than 80 characters."
        elif self.category.strip() and not term_slug(self.category):
            # Its page would have no address, and the article showed no category at all.
            found["category"] = "A category name needs a letter or a digit."
        if any(len(tag) > 80 for tag in tags):
            found["tags"] = "A tag is longer than 80 characters."
        elif unusable := [tag for tag in tags if not term_slug(tag)]:
            # A tag page could have no address: the tag was dropped without a word.
            names = ", ".join(f"“{tag}”" for tag in unusable[:5])
            found["tags"] = f"A tag needs a letter or a digit: {names}."
        return found

    def without_nul(self) -> Draft:
        """Return the draft as the database keeps it: without NUL (blog/database.py drops it).

        A digest, or a comparison with what is stored, made of text that still holds a NUL
        would name bytes nobody can fetch: source.txt would fail its own check.
        """

        def kept(text: str) -> str:  # `in` finds no NUL at memchr's speed; replace counts
            return text.replace(NUL, "") if NUL in text else text

        tags = kept(self.tags) if isinstance(self.tags, str) else [kept(t) for t in self.tags]
        return replace(
            self,
            title=kept(self.title),
            body=kept(self.body),
            summary=kept(self.summary),
            category=kept(self.category),
            tags=tags,
            slug=kept(self.slug),
            ai_model=kept(self.ai_model),
        )


def split_tags(value: str | list[str] | None) -> list[str]:
    """Turn "a, b, a" or ["a", "b"] into ["a", "b"]: trimmed, no blanks, no repeats.

    Tags are stored comma-separated, so a comma inside a list item separates tags there too.
    Two names with one slug are one tag. A name with no slug (no letter or digit) is kept, as
    typed, for Draft.problems to name: dropping it said nothing to the writer.
    """
    raw = [value] if isinstance(value, str) else list(value or [])
    items = [part for item in raw for part in str(item).split(",")]
    seen: dict[str, str] = {}
    for item in items:
        name = " ".join(str(item).split())
        key = (term_slug(name) or f" {name}") if name else ""  # " …": never a slug
        if key and key not in seen:
            seen[key] = name
    return list(seen.values())


def get_category(name: str) -> Category | None:
    """Find a category by name or slug, creating it when it is new; None for a blank name."""
    name = " ".join(name.split())
    slug = term_slug(name) if name else ""
    if not slug:
        return None
    found = select(Category).where(or_(Category.slug == slug, Category.name == name)).limit(1)
    category = db.session.scalar(found)
    if category is None:
        last = select(func.coalesce(func.max(Category.position), 0) + 1).scalar_subquery()
        insert_unless_taken(Category, [{"slug": slug, "name": name, "position": last}])
        category = db.session.scalar(found)
    return category


def get_tags(names: list[str]) -> list[Tag]:
    """Find tags by slug, creating the new ones; in the order given, without repeats."""
    slugged = [(term_slug(name), name) for name in names]  # once each: it normalizes twice
    by_slug = {slug: name for slug, name in reversed(slugged) if slug}
    slugs = [slug for slug in dict.fromkeys(slug for slug, _name in slugged) if slug]
    if not slugs:
        return []
    found = select(Tag).where(Tag.slug.in_(slugs))
    tags = {tag.slug: tag for tag in db.session.scalars(found)}
    missing = sorted(set(slugs) - tags.keys())
    if missing:
        # In slug order: two writers creating the same tags lock them in the same order, so
        # neither can hold one the other waits for (no deadlock).
        insert_unless_taken(Tag, [{"slug": slug, "name": by_slug[slug]} for slug in missing])
        tags = {tag.slug: tag for tag in db.session.scalars(found)}
    return [tags[slug] for slug in slugs]


def get_tag(name: str) -> Tag:
    """Find a tag by slug, creating it when it is new."""
    return get_tags([name])[0]


def unique_slug(wanted: str, article_id: int | None = None, *, crowded: bool = False) -> str:
    """Return `wanted` (or a -2, -3... variant) that no other article uses.

    Another server may take the same one before this transaction commits: callers write the
    slug through claim_slug, which chooses again when that happens. When that keeps happening
    (`crowded`: many writers want one title at once), a random variant stops the queue for
    the next number, where each writer would wait for the one before it to commit.
    """
    base = slugify(wanted)[:SLUG_MAX] or "article"
    candidate, n = base, 1
    while True:
        owner = db.session.scalar(select(Article.id).filter_by(slug=candidate))
        if owner is None or owner == article_id:
            return candidate
        n += 1
        candidate = f"{base}-{secrets.token_hex(3) if crowded else n}"


def claim_slug(article: Article, wanted: str) -> None:
    """Give the article `wanted` or the next free variant, and write it now (adding a new
    article to the session); when another writer took that slug meanwhile, choose again."""
    tries = 0

    def claim() -> None:
        nonlocal tries
        tries += 1
        article.slug = unique_slug(wanted, article.id, crowded=tries > 2)
        db.session.add(article)

    retry_unique(claim, Article.__tablename__, ["slug"])


def lock_article(article: Article) -> None:
    """Hold the article's row until the commit, and read it afresh.

    Saves of one article then take turns on every database: the conflict check, the next
    revision number (max + 1) and the version bump each see the previous save's commit. SQLite's
    writers already take turns (FOR UPDATE is not emitted there).
    """
    if article.id is None:
        return
    db.session.scalar(  # loading the row is what refreshes `article`
        select(Article)
        .where(Article.id == article.id)
        .with_for_update(of=Article)
        .execution_options(populate_existing=True)
    )


def create_article(
    draft: Draft,
    author: User,
    *,
    ai_generated: bool | None = None,
    ai_model: str | None = None,
    kind: str = "edit",
    note: str = "",
) -> tuple[Article, Revision]:
    """Create an article with its first revision (for AI drafts, the untouchable original).

    `ai_generated` and `ai_model`, when given, override the draft's.
    """
    if ai_generated is not None:
        draft = replace(draft, ai_generated=ai_generated, ai_model=ai_model or "")
    article = Article(
        author=author,
        ai_generated=draft.ai_generated,
        ai_model=draft.ai_model.strip() or None,
        title=draft.title.strip(),
    )
    claim_slug(article, draft.slug or draft.title)
    revision = add_revision(article, draft, author, kind=kind, note=note)
    return article, revision


def add_revision(
    article: Article,
    draft: Draft,
    actor: User,
    *,
    kind: str = "edit",
    note: str = "",
    editing_session: str | None = None,
) -> Revision:
    """Write a new revision and, while the article was never published, mirror it on the row."""
    lock_article(article)
    number = (
        db.session.scalar(
            select(func.max(Revision.number)).where(Revision.article_id == article.id)
        )
        or 0
    ) + 1
    revision = Revision(
        article_id=article.id,
        number=number,
        kind=kind,
        note=note,
        created_by=actor,
        editing_session=editing_session,
    )
    fill_revision(revision, _keep_ai_label(article, draft))
    db.session.add(revision)
    db.session.flush()
    if draft.slug and article.published_revision_id is None:
        claim_slug(article, draft.slug)
    if article.published_revision_id is None:
        copy_to_public(article, revision)
    article.updated_at = clock.now()
    article.version += 1
    return revision


def revision_values(draft: Draft) -> dict[str, Any]:
    """Return the columns a revision stores for a draft, normalised as stored, digest included.

    A plain dict, so the importer's workers compute a new revision's row without an ORM object.
    """
    draft = draft.without_nul()
    values = {
        "title": draft.title.strip(),
        "summary": draft.summary.strip(),
        "category_name": " ".join(draft.category.split()),
        "tags": ", ".join(split_tags(draft.tags)),
        "body": draft.body,
        "ai_generated": draft.ai_generated,
        "ai_model": draft.ai_model.strip()[:120] or None,
    }
    values["digest"] = text_digest(
        _source_text(
            values["title"], values["summary"], values["category_name"], values["tags"], draft.body
        )
    )
    return values


def fill_revision(revision: Revision, draft: Draft) -> None:
    """Put a draft's fields on a revision, normalised as they are stored, with their digest."""
    for column, value in revision_values(draft).items():
        setattr(revision, column, value)
    kept = {image.sha256: image for image in revision.images}
    hashes = image_hashes(revision.body)
    if sorted(kept) != hashes:  # a folded autosave keeps the rows it still names
        revision.images = [kept.get(digest) or RevisionImage(sha256=digest) for digest in hashes]


def refresh_revision_images() -> int:
    """Store every revision's image hashes again from its text; return how many were wrong.

    fill_revision keeps them with the text, but during an upgrade a server still on an older
    release writes revisions without them, and a change to image_hashes reaches only texts
    written after it. `flask rerender` calls this, so both are set right (where_used, and so
    the delete check, trusts these rows).
    """
    wrong = 0
    after = 0
    while revisions := db.session.execute(
        select(Revision.id, Revision.body)
        .where(Revision.id > after)
        .order_by(Revision.id)
        .limit(IN_LIST_MAX)
    ).all():
        ids = [revision_id for revision_id, _body in revisions]
        stored: dict[int, set[str]] = {revision_id: set() for revision_id in ids}
        named = select(RevisionImage.revision_id, RevisionImage.sha256)
        for revision_id, digest in db.session.execute(
            named.where(RevisionImage.revision_id.in_(ids))
        ):
            stored[revision_id].add(digest)
        fixed = {
            revision_id: hashes
            for revision_id, body in revisions
            if set(hashes := image_hashes(body or "")) != stored[revision_id]
        }
        if fixed:
            db.session.execute(
                delete(RevisionImage).where(RevisionImage.revision_id.in_(list(fixed)))
            )
            rows = [
                {"revision_id": revision_id, "sha256": digest}
                for revision_id, hashes in fixed.items()
                for digest in hashes
            ]
            if rows:
                db.session.execute(insert(RevisionImage), rows)
            wrong += len(fixed)
        after = ids[-1]
    return wrong


def _keep_ai_label(article: Article, draft: Draft) -> Draft:
    """Keep the AI label (and model) on every edit of an article that began as an AI draft."""
    if article.id is None:
        return draft
    original = ai_original(article)
    if original is None:
        return draft
    return replace(
        draft, ai_generated=True, ai_model=draft.ai_model.strip() or original.ai_model or ""
    )


def source_text(revision: Revision) -> str:
    """Return a revision as one plain-text document: what its digest seals and readers can fetch.

    A header of the fields readers see (one line each, whitespace collapsed), a blank line, then
    the Markdown body exactly as stored. Changing this format changes every digest: don't.
    """
    return _source_text(
        revision.title, revision.summary, revision.category_name, revision.tags, revision.body
    )


def _source_text(
    title: str | None, summary: str | None, category: str | None, tags: str | None, body: str | None
) -> str:
    header = (("Title", title), ("Summary", summary), ("Category", category), ("Tags", tags))
    lines = [f"{name}: {' '.join((value or '').split())}" for name, value in header]
    return "\n".join(lines) + "\n\n" + (body or "")


def text_digest(text: str) -> str:
    """Return the SHA-256 of a revision's source text, as hex (what `sha256sum` prints)."""
    return hashlib.sha256(text.encode()).hexdigest()


def seal(revision: Revision) -> None:
    """Freeze a revision's text: it is being submitted or approved, so it must never change."""
    if revision.sealed_at is None:
        revision.sealed_at = clock.now()


def conflicting_revision(
    article: Article, base_number: int, editing_session: str
) -> Revision | None:
    """Find a revision saved after `base_number` by anyone but this editing session.

    Locks the article first, so that a save which finds no conflict stays conflict-free until
    it commits: a second save from the same base waits, then sees the first one here.
    """
    lock_article(article)
    return db.session.scalar(
        select(Revision)
        .where(
            Revision.article_id == article.id,
            Revision.number > base_number,
            or_(
                Revision.editing_session.is_(None),
                Revision.editing_session != editing_session,
            ),
        )
        .order_by(Revision.number.desc())
        .limit(1)
    )


def save_draft(
    article: Article, draft: Draft, actor: User, *, editing_session: str, autosave: bool
) -> bool:
    """Save the editor's text as a revision, and its slug; say whether anything changed.

    One editing session's autosaves fold into one revision, but only while nobody has submitted
    or approved it: a sealed revision is never rewritten, so the next keystroke starts a new one.
    The caller has already checked for conflicts (conflicting_revision) and commits.
    """
    lock_article(article)
    moved = False
    if draft.slug and not article.keeps_address:
        before = article.slug
        claim_slug(article, draft.slug)
        moved = article.slug != before
    latest = latest_revision(article)
    kept = _keep_ai_label(article, draft)
    unchanged = same_text(latest, kept)
    if moved and article.status == Status.IN_REVIEW:  # said where the reviewer reads
        change = f"/articles/{before} → /articles/{article.slug}"
        db.session.add(
            ReviewEvent(
                article_id=article.id,
                revision_id=latest.id if latest is not None else None,
                actor=actor,
                action="new_address",
                comment=change,
            )
        )
        record("new_address", actor, f"{article.title}: {change}")
    if unchanged:
        if latest is not None and latest.kind == "autosave" and not autosave and not latest.sealed:
            latest.kind = "edit"  # the explicit save confirms what autosave already kept
        if moved:  # in no revision: the version is what a decision made on the old one checks
            article.updated_at = clock.now()
            article.version += 1
        return moved
    foldable = (
        latest is not None
        and latest.kind == "autosave"
        and not latest.sealed
        and latest.editing_session == editing_session
        and latest.created_by_id == actor.id
    )
    if foldable:
        fill_revision(latest, kept)
        latest.kind = "autosave" if autosave else "edit"
        latest.created_at = clock.now()
        latest.check_flags = None  # the text changed: the queue's flags must be computed again
        if article.published_revision_id is None:
            copy_to_public(article, latest)
        article.updated_at = clock.now()
        article.version += 1
    else:
        add_revision(
            article,
            kept,
            actor,
            kind="autosave" if autosave else "edit",
            editing_session=editing_session,
        )
    return True


def same_text(revision: Revision | None, draft: Draft) -> bool:
    """Say whether saving `draft` would store exactly what `revision` holds."""
    draft = draft.without_nul()
    return revision is not None and (
        revision.title == draft.title.strip()
        and revision.summary == draft.summary.strip()
        and revision.category_name == " ".join(draft.category.split())
        and revision.tags == ", ".join(split_tags(draft.tags))
        and revision.body == draft.body
        and revision.ai_generated == draft.ai_generated
        and (revision.ai_model or "") == draft.ai_model.strip()[:120]
    )


def ai_original(article: Article) -> Revision | None:
    """Return the AI's original draft (revision 1 when an AI wrote it; never edited), or None."""
    return db.session.scalar(
        select(Revision).where(
            Revision.article_id == article.id, Revision.number == 1, Revision.kind == "ai_original"
        )
    )


def draft_from(revision: Revision) -> Draft:
    """Return a revision's fields as a draft (to restore it, or to compare with it)."""
    return Draft(
        title=revision.title,
        body=revision.body,
        summary=revision.summary,
        category=revision.category_name,
        tags=revision.tag_names,
        ai_generated=revision.ai_generated,
        ai_model=revision.ai_model or "",
    )


def latest_revision(article: Article) -> Revision | None:
    """Return the newest revision (the working text)."""
    return db.session.scalar(
        select(Revision)
        .where(Revision.article_id == article.id)
        .order_by(Revision.number.desc())
        .limit(1)
    )


def latest_revisions(article_ids: list[int]) -> dict[int, Revision]:
    """Return each article's newest revision in one query (the working title may be newer)."""
    if not article_ids:
        return {}
    newest = (
        select(Revision.article_id, func.max(Revision.number).label("number"))
        .where(Revision.article_id.in_(article_ids))
        .group_by(Revision.article_id)
        .subquery()
    )
    rows = db.session.scalars(
        select(Revision).join(
            newest,
            (Revision.article_id == newest.c.article_id) & (Revision.number == newest.c.number),
        )
    )
    return {revision.article_id: revision for revision in rows}


def copy_to_public(article: Article, revision: Revision) -> None:
    """Copy a revision's fields onto the article row: title, text, HTML, tags, category."""
    rendered = render(revision.body)
    article.title = revision.title
    article.summary = revision.summary
    article.body = revision.body
    article.body_html = rendered.html
    article.reading_minutes = rendered.minutes
    article.ai_generated = revision.ai_generated
    article.ai_model = revision.ai_model
    copy_terms(article, revision)


def copy_terms(article: Article, revision: Revision) -> bool:
    """Point the article at its revision's category and tags; say whether that changed them."""
    category = get_category(revision.category_name)
    wanted = get_tags(revision.tag_names)
    same_category = article.category_id == (category.id if category is not None else None)
    same_tags = [link.tag_id for link in article.tag_links] == [tag.id for tag in wanted]
    article.category = category
    if not same_tags:
        article.tag_links = [
            ArticleTag(tag_id=tag.id, position=position) for position, tag in enumerate(wanted)
        ]
    return not (same_category and same_tags)


def name_as_approved(
    categories: dict[str, str], tags: dict[str, str], approved: Collection[int]
) -> None:
    """Spell categories and tags (slug -> spelling) as approved text does, if no other approved
    article uses them yet; `approved` are the articles being approved now.

    Drafts create the categories and tags they name, and a name finds its row by slug
    (content.term_slug), which drops case and most punctuation: "KAFKA!" in an unreviewed
    draft can create the row that a reviewed "Kafka" then shares. Until an approved article
    uses a row its name is provisional, so the first approval names it; after that it stays.
    (Names that mean different things, "C++" and "C#", never share a slug.)
    """
    elsewhere = and_(Article.id.not_in(approved), Article.published_revision_id.is_not(None))
    # Columns, not objects: an import names a batch's hundreds of tags again and again, and
    # loading each as an object cost more than the query. The updates keep the session's
    # objects in step (an ORM-enabled UPDATE).
    spelled = select(Category.id, Category.slug, Category.name)
    for category_id, slug, spelling in db.session.execute(
        spelled.where(Category.slug.in_(categories))
    ).all():
        name = categories[slug]
        if spelling == name:
            continue
        used = exists().where(Article.category_id == category_id, elsewhere)
        taken = exists().where(Category.name == name)  # names are unique too
        if not db.session.scalar(select(or_(used, taken))):
            db.session.execute(update(Category).where(Category.id == category_id).values(name=name))
    spelled = select(Tag.id, Tag.slug, Tag.name)
    for tag_id, slug, spelling in db.session.execute(spelled.where(Tag.slug.in_(tags))).all():
        if spelling == tags[slug]:
            continue
        used = exists().where(
            ArticleTag.tag_id == tag_id, ArticleTag.article_id == Article.id, elsewhere
        )
        if not db.session.scalar(select(used)):
            db.session.execute(update(Tag).where(Tag.id == tag_id).values(name=tags[slug]))


def approved_spellings(category: str, tags: list[str]) -> tuple[dict[str, str], dict[str, str]]:
    """Key a text's category and tags by slug, the first spelling of each (name_as_approved)."""
    name = " ".join(category.split())
    category_slug = term_slug(name)
    tag_slugs = [(term_slug(tag), tag) for tag in reversed(tags)]
    return (
        {category_slug: name} if category_slug else {},
        {slug: tag for slug, tag in tag_slugs if slug},
    )


def publish(
    article: Article,
    revision: Revision,
    reviewer: User,
    publish_at: datetime | None = None,
) -> None:
    """Make a revision the public text, visible from `publish_at` (now when not given)."""
    seal(revision)
    copy_to_public(article, revision)
    name_as_approved(*approved_spellings(revision.category_name, revision.tag_names), [article.id])
    article.ai_share = ai_share(article, revision)
    now = clock.now()
    article.taken_down_at = None
    article.taken_down_reason = ""
    article.published_revision_id = revision.id
    # A re-approved article keeps its original date; a scheduled one takes the scheduled moment,
    # and one approved now that was still waiting for its moment goes out now.
    if publish_at is not None or article.published_at is None or article.published_at > now:
        article.published_at = publish_at or now
    article.reviewed_by = reviewer
    article.reviewed_at = now
    article.updated_at = now
    article.version += 1
    db.session.flush()
    index_article(article)
    pagecache.public_changed()  # readers' pages turn over when this commits


def ai_share(article: Article, revision: Revision) -> int | None:
    """Return the percentage of a revision's words that are the AI original's, or None.

    Words people added count against it, whether they replace the AI's or come beside them.
    """
    original = ai_original(article)
    if original is None:
        return None
    words = len(revision.body.split())
    if not words:
        return 0
    added, _removed, _total = word_counts(original.body, revision.body)
    return round(100 * max(0, words - added) / words)
