"""Automatic checks a reviewer sees on a draft: duplicates, code that does not parse, dead links.

Each check says what it looked at and what it found, so the reviewer can judge; none of them
blocks a decision.
"""

from __future__ import annotations

import ast
import json
import re
import tomllib
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import yaml
from flask import current_app, request
from sqlalchemy import literal_column, select
from werkzeug.exceptions import HTTPException
from werkzeug.routing import RequestRedirect

from .content import markdown_parser, plain_text, reading_minutes
from .extensions import db
from .models import Article, Category, Revision, Tag
from .search import fts, is_public, matching_articles

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


def near_duplicates(revision: Revision, article_id: int | None) -> Check:
    """Find published articles whose words overlap the draft's (FTS finds, Jaccard measures)."""
    draft_words = _words(f"{revision.title} {revision.summary} {plain_text(revision.body)}")
    title_words = _words(f"{revision.title} {revision.summary} {revision.tags}")
    query_words = sorted(title_words)[:MAX_QUERY_WORDS]
    if not query_words:
        return Check("Near-duplicates", True, "Not enough words to compare.")
    match = " OR ".join('"' + word.replace('"', '""') + '"' for word in query_words)
    rows = db.session.execute(
        matching_articles(match)
        .with_only_columns(Article.id, Article.slug, Article.title, fts.c.body)
        .where(Article.id != (article_id or 0))
        .order_by(literal_column("rank"))
        .limit(5)
    ).all()
    scored = []
    for _id, slug, title, body in rows:
        other = _words(f"{title} {body}")
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
    """Parse Python, JSON, YAML and TOML fences; report the ones that do not parse."""
    findings, checked = [], 0
    for token in markdown_parser().parse(revision.body):
        if token.type != "fence":
            continue
        language = (token.info.split() or [""])[0].lower()
        parser = _PARSERS.get(language)
        if parser is None:
            continue
        checked += 1
        try:
            parser(token.content)
        except Exception as error:  # every parser has its own error type; all mean "broken"
            line = (token.map[0] + 1) if token.map else "?"
            message = str(error).splitlines()[0][:200]
            findings.append(Finding(f"{language} block at line {line}: {message}"))
    if findings:
        return Check("Code blocks", False, f"{len(findings)} of {checked} do not parse.", findings)
    return Check("Code blocks", True, f"{checked} checked (Python, JSON, YAML, TOML): all parse.")


def internal_links(revision: Revision) -> Check:
    """Find links into this site that would answer 404."""
    adapter = current_app.url_map.bind(request.host if request else "localhost")
    site = urlsplit(current_app.config.get("SITE_URL") or "").netloc
    findings, checked = [], 0
    for href in _links(revision.body):
        parts = urlsplit(href)
        if parts.scheme or parts.netloc:
            if not site or parts.netloc != site:
                continue  # another site: not ours to check
        elif not href.startswith("/"):
            continue  # #anchors and relative links
        checked += 1
        if not _resolves(adapter, parts.path, parts.query):
            findings.append(Finding(f"{href} would be a 404"))
    if findings:
        return Check("Links into this site", False, f"{len(findings)} broken.", findings)
    return Check("Links into this site", True, f"{checked} checked: all resolve.")


def _links(markdown: str) -> list[str]:
    links = []
    for token in markdown_parser().parse(markdown):
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
    ]


def quick_flags(revision: Revision) -> list[str]:
    """Return the cheap checks' problems as short flags, for the queue."""
    return [check.name for check in (code_blocks(revision), metadata(revision)) if not check.ok]
