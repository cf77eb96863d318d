"""An admin reviews in a real browser: request changes, approve an API draft; a reader finds it."""

from __future__ import annotations

import json
import re
import urllib.request

import pytest
from playwright.sync_api import expect

from ..conftest import ADMIN, AUTHOR, PASSWORD

pytestmark = pytest.mark.browser


def send_draft(live_server, token: str, title: str, body: str) -> dict:  # noqa: ANN001
    """Send a draft through the API as an AI tool would."""
    payload = {"title": title, "summary": f"{title}: a summary.", "category": "Database",
               "tags": ["PostgreSQL", "Replication"], "body_markdown": body,
               "ai_model": "draft-model-1"}  # fmt: skip
    request = urllib.request.Request(
        f"{live_server.url}/api/drafts",
        data=json.dumps(payload).encode(),
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 201
        return json.load(response)


def test_admin_reviews_and_a_reader_finds_the_article(page, live_server):
    token = live_server.app.test_cli_runner().invoke(args=["token", "create", AUTHOR]).stdout
    token = token.strip()
    body = "## Why replicas lag\n\nLogical replication lags when one worker applies it all.\n"
    approved = send_draft(live_server, token, "Replica lag explained", body)
    send_draft(live_server, token, "Half-finished thoughts", "## Draft\n\nNot much here yet.\n")

    page.goto("/login?next=/review/")
    page.get_by_label("E-mail").fill(ADMIN)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator("#queue tbody tr")).to_have_count(2)

    # Request changes on one draft (a comment is required, and the author will read it).
    page.get_by_role("link", name="Half-finished thoughts").click()
    page.get_by_label(re.compile("^Comment to the author")).fill("Needs numbers and a conclusion.")
    page.get_by_role("button", name="Request changes").click()
    expect(page.locator(".flash")).to_contain_text("Changes requested")
    expect(page.locator("#queue tbody tr")).to_have_count(1)

    # Approve the other one: read it as readers will see it, check the checklist, approve.
    page.get_by_role("link", name="Replica lag explained").click()
    expect(page.locator(".review-preview h2")).to_have_text(re.compile("^Why replicas lag"))
    expect(page.locator(".checklist")).to_contain_text("Code blocks")
    page.get_by_role("button", name="Approve", exact=True).click()
    confirm = page.locator("#confirm-dialog")  # approving publishes at once: it asks first
    expect(confirm).to_contain_text("Replica lag explained")
    confirm.get_by_role("button", name="Approve").click()
    expect(page.locator(".flash")).to_contain_text("Approved and published.")
    expect(page.locator("#queue")).to_contain_text("Nothing is waiting for review.")

    # A reader (signed out) searches, finds it with its provenance, and opens the changes page.
    page.get_by_role("button", name="Sign out").click()
    # The sign-out's page first: a navigation started while it loads is cut off by it.
    expect(page.locator(".flash")).to_have_text("You are signed out.")
    page.goto("/")
    page.locator("#q").press_sequentially("replica", delay=30)
    card = page.locator(".card").filter(has_text="Replica lag explained")
    expect(card).to_have_count(1)
    expect(card.locator(".card-provenance")).to_contain_text(
        "AI-generated · Reviewed by Dennis Atonya"
    )
    card.locator(".card-title a").click()
    expect(page.locator("h1")).to_have_text("Replica lag explained")
    expect(page.locator(".post-header .provenance")).to_contain_text("Model: draft-model-1")
    page.get_by_role("link", name="What the reviewer changed").click()
    expect(page.locator("h1")).to_have_text("What the reviewer changed")
    expect(page.locator(".changes-summary")).to_contain_text("unchanged")
    assert approved["slug"] in page.url
