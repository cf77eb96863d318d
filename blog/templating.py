"""Jinja filters and globals shared by every template."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any
from urllib.parse import urljoin, urlsplit

from flask import Flask, current_app, request, url_for
from flask.ctx import RequestContext
from markupsafe import Markup, escape

from .htmx import is_fragment
from .models import Article, Status
from .search import Highlight, Results


def short_date(value: datetime | None) -> str:
    """Format a date the way the cards show it: 20 Apr 2025."""
    return f"{value.day} {value:%b %Y}" if value else ""


def long_date(value: datetime | None) -> str:
    """Format a date with its month spelled out: 20 April 2025."""
    return f"{value.day} {value:%B %Y}" if value else ""


def iso(value: datetime | None) -> str:
    """Format a datetime as RFC 3339 (Atom, sitemaps, <time datetime>)."""
    return value.isoformat(timespec="seconds").replace("+00:00", "Z") if value else ""


# What XML 1.0 cannot hold even escaped: C0 controls but tab and newlines, U+FFFE, U+FFFF and
# lone surrogates. One of them in a title makes every feed reader reject the whole feed.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def xml_text(value: object) -> str:
    """Drop the characters XML cannot hold from text bound for a feed or sitemap."""
    if value is None:
        return ""
    text = value if isinstance(value, str) else str(value)
    if not _NOT_XML.search(text):
        return text
    cleaned = _NOT_XML.sub("", text)
    # Markup (already escaped HTML such as body_html) stays Markup, so it is not escaped twice.
    return type(text)(cleaned) if hasattr(text, "__html__") else cleaned


def absolute_url(endpoint: str, **values: Any) -> str:
    """Build an absolute URL, on SITE_URL when it is configured, else on the request's host."""
    path = url_for(endpoint, **values)
    base = current_app.config.get("SITE_URL") or request.host_url
    return urljoin(base.rstrip("/") + "/", path.lstrip("/"))


def site_request_context() -> RequestContext:
    """A request context on the site's own address, for links built where no request is (the CLI).

    A bare test_request_context() is a request for "localhost", which Flask refuses whenever
    TRUSTED_HOSTS does not name it (as in production, where it defaults to SITE_URL's host):
    the context then has no URL adapter and url_for fails. Ask for SITE_URL's host instead (its
    scheme and host only: the path a link needs comes from url_for), else the first trusted host
    (a ".example.com" entry trusts "example.com" too), else "localhost", which is trusted when
    nothing is listed.
    """
    config = current_app.config
    site = urlsplit(config.get("SITE_URL") or "")
    if site.netloc:
        base = f"{site.scheme}://{site.netloc}"
    else:
        base = "http://" + (config.get("TRUSTED_HOSTS") or ["localhost"])[0].lstrip(".")
    return current_app.test_request_context(base_url=base)


def provenance(article: Article, with_date: bool = False) -> str:
    """Say how an article was made: "AI-generated · Reviewed by X [on date]" or "Written by Y"."""
    if article.ai_generated:
        if article.reviewed_by is None:
            return "AI-generated · Not yet reviewed"
        line = f"AI-generated · Reviewed by {article.reviewed_by.name}"
        if with_date and article.reviewed_at is not None:
            line += f" on {short_date(article.reviewed_at)}"
        return line
    return f"Written by {article.author.name}"


# The ai-disclosure proposals' vocabulary (WHATWG html#9479, WICG proposals#261). "autonomous"
# (no human in the loop) never applies here: every article is approved by a named person.
AI_ASSISTED_BELOW = 50  # percent of the published words kept from the AI's original


def ai_disclosure(article: Article) -> str:
    """Say how much AI made the published text, in the proposals' terms (none ... ai-generated).

    An AI draft published with less than half of its words the AI's (people rewrote it, or
    wrote more around it) is "ai-assisted"; one whose share was never measured (articles
    published before it was) stays "ai-generated".
    """
    if not article.ai_generated:
        return "none"
    if article.ai_share is not None and article.ai_share < AI_ASSISTED_BELOW:
        return "ai-assisted"
    return "ai-generated"


STATUS_LABELS = {
    Status.DRAFT: "Draft",
    Status.IN_REVIEW: "In review",
    Status.CHANGES_REQUESTED: "Changes requested",
    Status.SCHEDULED: "Scheduled",
    Status.PUBLISHED: "Published",
    Status.REJECTED: "Rejected",
    Status.TAKEN_DOWN: "Taken down",
}


def status_label(article: Article) -> str:
    """Describe where an article stands, as its author and reviewers need to know it."""
    label = STATUS_LABELS.get(Status(article.status), article.status)
    if article.status == Status.SCHEDULED and article.is_public():
        return "Published"
    if article.approved_behind_newer_text:
        if article.is_public():
            return f"{label} · published version live"
        return f"{label} · approved version goes live {long_date(article.published_at)}"
    return label


# The list's "how it was written" chips, by blog.search.PROVENANCES value.
PROVENANCE_LABELS = {"ai": "AI-generated, reviewed", "human": "Human-written"}


def count_label(results: Results) -> str:
    """Say how many articles matched, as the count line shows it: "1,000+ articles"."""
    number = f"{results.total:,}{'+' if results.total_capped else ''}"
    plural = results.total != 1 or results.total_capped
    return f"{number} article{'s' if plural else ''}"


def highlighted(pieces: Highlight) -> Markup:
    """Render search output with its matched words in <mark>, everything else escaped."""
    return Markup("").join(
        Markup("<mark>{}</mark>").format(text) if marked else escape(text)
        for text, marked in pieces
    )


def init_app(app: Flask) -> None:
    """Register the filters and globals."""
    app.jinja_env.filters.update(
        short_date=short_date,
        long_date=long_date,
        iso=iso,
        count_label=count_label,
        highlighted=highlighted,
    )
    app.jinja_env.globals.update(
        is_fragment=is_fragment,
        absolute_url=absolute_url,
        provenance=provenance,
        ai_disclosure=ai_disclosure,
        ai_assisted_below=AI_ASSISTED_BELOW,
        status_labels=STATUS_LABELS,
        status_label=status_label,
    )
    app.jinja_env.filters["xml_text"] = xml_text
    app.jinja_env.trim_blocks = True
    app.jinja_env.lstrip_blocks = True
