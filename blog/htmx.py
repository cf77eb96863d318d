"""The one place that decides whether a request wants a fragment or a page, and renders it."""

from __future__ import annotations

from typing import Any

from flask import Request, Response, make_response, render_template, request
from jinja2_fragments.flask import render_block

VARY = "HX-Request, HX-History-Restore-Request"


def is_fragment(req: Request | None = None) -> bool:
    """Say whether htmx asked for a fragment: HX-Request, and not a history restore.

    A history restore (Back after an htmx navigation) also sends HX-Request but swaps the whole
    body, so it must get the full page (htmx#3037).
    """
    req = req or request
    return (
        req.headers.get("HX-Request") == "true"
        and req.headers.get("HX-History-Restore-Request") != "true"
    )


def render_page(template: str, block: str, status_code: int = 200, **context: Any) -> Response:
    """Render the whole page, or only `block` of it for an htmx request; vary on the headers."""
    if is_fragment():
        body = render_block(template, block, **context)
    else:
        body = render_template(template, **context)
    response = make_response(body, status_code)
    response.vary.update(header.strip() for header in VARY.split(","))
    return response
