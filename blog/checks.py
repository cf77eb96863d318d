"""Automatic checks a reviewer sees on a draft: duplicates, code that does not parse, dead links.

Each check says what it looked at and what it found, so the reviewer can judge; none of them
blocks a decision. (An image of ours that answers nothing does block an approval, in
workflow.transition: nobody can have seen it. See media.unseen_images.)
"""

from __future__ import annotations

import ast
import json
import re
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from urllib.parse import urlsplit

import yaml
from flask import current_app, g, has_request_context, request
from sqlalchemy import select, update
from werkzeug.exceptions import HTTPException
from werkzeug.routing import RequestRedirect

from .content import parse, plain_text, reading_minutes
from .extensions import db
from .models import Article, Category, Revision, Tag
from .search import is_public, search_index

# Bounds that keep the review page's checks to about a second on the worst body.
MAX_PARSE_CHARS = 20_000  # the longest code block handed to a parser
MAX_PARSE_TOTAL = 60_000  # all code blocks of one body together
MAX_LINKS_CHECKED = 200  # distinct addresses into this site checked (each may be a query)
# Markdown checked for missing queue flags in one request. Every check runs (~7 µs a character
# cold on the demo, near-duplicates most of it): about 0.3 s; the rest wait for the next load.
QUEUE_CHECK_CHARS = 40_000
PENDING = "Not checked yet"
NEAR_DUPLICATE = 0.5  # share of distinct words in common (Jaccard) that makes a near-duplicate
MAX_QUERY_WORDS = 24
_WORD = re.compile(r"[a-z0-9][a-z0-9+#.-]{3,}")
STOP_WORDS = frozenset(
    "this that with from have which what when where your they them their there these those "
    "into than then more most also only very just over such about would could should been "
    "will were each other some many much does like make made used uses using".split()
)


@dataclass
class Finding:
    text: str
    href: str | None = None


@dataclass
class Check:
    name: str
    ok: bool
    summary: str
    findings: list[Finding] = field(default_factory=list)


def _words(text: str) -> set[str]:
    return {w for w in _WORD.findall(text.lower()) if w not in STOP_WORDS}


@lru_cache(maxsize=512)
def _published_words(title: str, markdown: str) -> frozenset[str]:
    """Return a published article's words; kept, since every draft's check compares with them.

    Parsing the five candidates' Markdown was 9 in 10 parts of the checks' cost (~170 ms a draft
    on the demo), and the queue now runs every check on every waiting draft.
    """
    return frozenset(_words(f"{title} {plain_text(markdown)}"))


def near_duplicates(revision: Revision, article_id: int | None) -> Check:
    """Find published articles whose words overlap the draft's (the index finds, Jaccard rates)."""
    draft_words = _words(f"{revision.title} {revision.summary} {plain_text(revision.body)}")
    title_words = _words(f"{revision.title} {revision.summary} {revision.tags}")
    query_words = sorted(title_words)[:MAX_QUERY_WORDS]
    if not query_words:
        return Check("Near-duplicates", True, "Not enough words to compare.")
    found = search_index().similar(query_words, article_id or 0, limit=5)
    # Only the columns compared: loading whole articles loaded their tags and authors too.
    articles = {
        row.id: row
        for row in db.session.execute(
            select(Article.id, Article.slug, Article.title, Article.body).where(
                Article.id.in_(found)
            )
        )
    }
    scored = []
    for found_id in found:
        slug, title = articles[found_id].slug, articles[found_id].title
        other = _published_words(title, articles[found_id].body)
        overlap = len(draft_words & other) / max(1, len(draft_words | other))
        if overlap >= NEAR_DUPLICATE / 2:
            scored.append(
                (
                    overlap,
                    Finding(f"{title} ({overlap:.0%} of words in common)", f"/articles/{slug}"),
                )
            )
    findings = [finding for _overlap, finding in scored]
    if any(overlap >= NEAR_DUPLICATE for overlap, _finding in scored):
        return Check("Near-duplicates", False, "Very similar to a published article.", findings)
    if findings:
        return Check("Near-duplicates", True, "Related articles exist (not duplicates).", findings)
    return Check("Near-duplicates", True, "No similar published article.")


_PARSERS = {
    "python": lambda code: ast.parse(code),
    "py": lambda code: ast.parse(code),
    "json": lambda code: json.loads(code),
    "yaml": lambda code: list(yaml.safe_load_all(code)),
    "yml": lambda code: list(yaml.safe_load_all(code)),
    "toml": lambda code: tomllib.loads(code),
}


def code_blocks(revision: Revision) -> Check:
    """Parse Python, JSON, YAML and TOML fences; report the ones that do not parse.

    PyYAML and tomllib are pure Python (~6 µs a character): a block longer than MAX_PARSE_CHARS,
    or past MAX_PARSE_TOTAL for the whole body, is skipped and counted, not parsed.
    """
    findings, checked, skipped, parsed_chars = [], 0, 0, 0
    for token in parse(revision.body)[0]:
        if token.type != "fence":
            continue
        language = (token.info.split() or [""])[0].lower()
        parser = _PARSERS.get(language)
        if parser is None:
            continue
        size = len(token.content)
        if size > MAX_PARSE_CHARS or parsed_chars + size > MAX_PARSE_TOTAL:
            skipped += 1
            continue
        parsed_chars += size
        checked += 1
        try:
            parser(token.content)
        except Exception as error:  # every parser has its own error type; all mean "broken"
            line = (token.map[0] + 1) if token.map else "?"
            message = str(error).splitlines()[0][:200]
            findings.append(Finding(f"{language} block at line {line}: {message}"))
    note = f" {skipped} too long to check." if skipped else ""
    if findings:
        summary = f"{len(findings)} of {checked} do not parse.{note}"
        return Check("Code blocks", False, summary, findings)
    summary = f"{checked} checked (Python, JSON, YAML, TOML): all parse.{note}"
    return Check("Code blocks", True, summary)


def internal_links(revision: Revision) -> Check:
    """Find links into this site that would answer 404."""
    adapter = current_app.url_map.bind(request.host if request else "localhost")
    site = urlsplit(current_app.config.get("SITE_URL") or "").netloc
    findings, checked = [], 0
    # Each link may cost a query: check each address once, and at most MAX_LINKS_CHECKED.
    hrefs = list(dict.fromkeys(_links(revision.body)))
    for href in hrefs:
        parts = urlsplit(href)
        if parts.scheme or parts.netloc:
            if not site or parts.netloc != site:
                continue  # another site: not ours to check
        elif not href.startswith("/"):
            continue  # #anchors and relative links
        if checked == MAX_LINKS_CHECKED:
            findings.append(Finding(f"Only the first {MAX_LINKS_CHECKED} addresses were checked."))
            break
        checked += 1
        if not _resolves(adapter, parts.path, parts.query):
            findings.append(Finding(f"{href} would be a 404"))
    broken = sum(1 for finding in findings if finding.text.endswith("would be a 404"))
    if broken:
        return Check("Links into this site", False, f"{broken} broken.", findings)
    if findings:
        return Check("Links into this site", True, f"{checked} checked: all resolve.", findings)
    return Check("Links into this site", True, f"{checked} checked: all resolve.")


def _links(markdown: str) -> list[str]:
    links = []
    for token in parse(markdown)[0]:
        for child in token.children or []:
            if child.type == "link_open" and child.attrGet("href"):
                links.append(str(child.attrGet("href")))
    return links


def _resolves(adapter, path: str, query: str) -> bool:  # noqa: ANN001 - werkzeug MapAdapter
    try:
        endpoint, values = adapter.match(path or "/", method="GET", query_args=query)
    except RequestRedirect:
        return True
    except HTTPException:
        return False
    if endpoint == "public.article":
        return (
            db.session.scalar(select(Article.id).where(Article.slug == values["slug"], is_public()))
            is not None
        )
    if endpoint == "public.category":
        return db.session.scalar(select(Category.id).filter_by(slug=values["slug"])) is not None
    if endpoint == "public.tag":
        return db.session.scalar(select(Tag.id).filter_by(slug=values["slug"])) is not None
    return True


def metadata(revision: Revision) -> Check:
    """Say which of summary, category and tags are missing."""
    missing = [
        name
        for name, value in (
            ("summary", revision.summary),
            ("category", revision.category_name),
            ("tags", revision.tags),
        )
        if not value.strip()
    ]
    if missing:
        return Check("Summary, category, tags", False, "Missing: " + ", ".join(missing) + ".")
    return Check("Summary, category, tags", True, "All present.")


def reading_time(revision: Revision) -> Check:
    """Report the reading time (a very short or very long article is worth a look)."""
    minutes = reading_minutes(revision.body)
    ok = 2 <= minutes <= 30
    note = "" if ok else (" — unusually short" if minutes < 2 else " — unusually long")
    return Check("Reading time", ok, f"{minutes} min{note}.")


def run_checks(revision: Revision, article_id: int | None) -> list[Check]:
    """Run every check on a revision."""
    return [
        near_duplicates(revision, article_id),
        code_blocks(revision),
        internal_links(revision),
        metadata(revision),
        reading_time(revision),
        images(revision),
    ]


def quick_flags(revision: Revision) -> list[str]:
    """Return every failing check as a short flag for the queue: a green "OK" must mean it.

    Run once per revision (queue_flags stores the result), so the dearer checks (near-duplicates,
    links) cost one pass per saved text, not one per queue load.
    """
    return [check.name for check in run_checks(revision, revision.article_id) if not check.ok]


# Stored flags carry the version of the rules that made them; older ones are computed again.
FLAGS_VERSION = 2


def _stored_flags(value: str | None) -> list[str] | None:
    """Read stored flags, or None when there are none or they were made by older rules."""
    if value is None:
        return None
    stored = json.loads(value)
    if isinstance(stored, dict) and stored.get("version") == FLAGS_VERSION:
        return list(stored.get("flags", []))
    return None


def queue_flags(
    revisions: list[Revision], compute: Callable[[Revision], list[str]] | None = None
) -> dict[int, list[str]]:
    """Return each revision's queue flags: stored ones as they are, missing ones computed once.

    The queue lists up to 200 drafts, and parsing each body on every load cost seconds. A
    revision's flags depend only on its text, so they are stored in `check_flags` the first time
    they are needed (an autosave that rewrites an unsealed revision sets them back to None).
    Storing happens after the parsing, in a short write transaction of its own: the page stays a
    cheap read (no BEGIN IMMEDIATE while Markdown is parsed, so autosaves never wait on it), and
    the update applies only if the text is still the one checked. At most QUEUE_CHECK_CHARS of
    Markdown are parsed per request; the rest say PENDING and are checked on the next loads.
    """
    flags: dict[int, list[str]] = {}
    computed: dict[int, tuple[list[str], Revision]] = {}
    budget = QUEUE_CHECK_CHARS
    for revision in revisions:
        stored = _stored_flags(revision.check_flags)
        if stored is not None:
            flags[revision.id] = stored
        elif len(revision.body) <= budget or not computed:
            budget -= len(revision.body)
            flags[revision.id] = (compute or quick_flags)(revision)
            computed[revision.id] = (flags[revision.id], revision)
        else:
            flags[revision.id] = [PENDING]
    if computed:
        _store_flags(computed)
    return flags


def _store_flags(computed: dict[int, tuple[list[str], Revision]]) -> None:
    """Save computed flags on their own connection, where the text is still what was checked."""
    previous = g.get("may_write", False) if has_request_context() else None
    if has_request_context():
        g.may_write = True  # this connection writes: BEGIN IMMEDIATE (blog/sqlite.py)
    try:
        with db.engine.begin() as connection:
            for revision_id, (found, revision) in computed.items():
                connection.execute(
                    update(Revision)
                    .where(
                        Revision.id == revision_id,
                        # Unset, or still the outdated value read: never over a fresher one.
                        Revision.check_flags.is_(None)
                        if revision.check_flags is None
                        else Revision.check_flags == revision.check_flags,
                        Revision.body == revision.body,
                        Revision.summary == revision.summary,
                        Revision.category_name == revision.category_name,
                        Revision.tags == revision.tags,
                    )
                    .values(check_flags=json.dumps({"version": FLAGS_VERSION, "flags": found}))
                )
    finally:
        if has_request_context():
            g.may_write = previous


MAX_IMAGES_CHECKED = 50  # each may cost a query and, on S3, a HEAD request


def images(revision: Revision) -> Check:
    """Flag images without alt text, images that will not load, and heavy originals."""
    from .content import body_images, media_path
    from .media import LARGE_ORIGINAL_BYTES, LARGE_ORIGINAL_PIXELS
    from .models import Media
    from .storage import StorageUnavailable, media_storage

    def stored(key: str) -> bool | None:
        """Say whether the storage holds the file; None when it cannot be asked now."""
        try:
            return media_storage().exists(key)
        except StorageUnavailable:
            return None

    found = body_images(revision.body)
    if not found:
        return Check("Images", True, "No images.")
    findings, problems = [], 0
    for image in found[:MAX_IMAGES_CHECKED]:
        src = str(image.attrGet("src") or "")
        alt = "".join(child.content for child in image.children or []).strip()
        match = media_path(src)
        media = None
        if match is not None:
            media = db.session.scalar(select(Media).filter_by(sha256=match["hash"]))
        notes = []
        if not alt:
            notes.append("no alt text (screen readers say nothing)")
        if match is None:
            notes.append("not an image uploaded here: readers' browsers will not load it")
        elif media is None or (present := stored(match.group(0).rsplit("/", 1)[1])) is False:
            notes.append("does not resolve: no such uploaded image")
        elif present is None:
            notes.append("not checked: the media storage cannot be reached now")
        elif (
            media.bytes > LARGE_ORIGINAL_BYTES or media.width * media.height > LARGE_ORIGINAL_PIXELS
        ):
            notes.append(
                f"oversized original: {media.bytes / 1e6:.1f} MB, {media.width} x {media.height}"
            )
        if notes:
            problems += 1
            findings.append(Finding(f"{src[:200]}: {'; '.join(notes)}", src if match else None))
        else:
            findings.append(Finding(f"{src[:200]}: {alt[:120]}", src))
    skipped = len(found) - MAX_IMAGES_CHECKED
    note = f" Only the first {MAX_IMAGES_CHECKED} were checked." if skipped > 0 else ""
    if problems:
        return Check("Images", False, f"{problems} of {len(found)} need attention.{note}", findings)
    return Check("Images", True, f"{len(found)} checked: alt text, served here.{note}", findings)
