"""An author in a real browser: sign in, write with a live preview, save, diff, conflict, submit."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from .conftest import sign_in

pytestmark = pytest.mark.browser


def test_author_writes_saves_diffs_meets_a_conflict_and_submits(page, browser, live_server):
    sign_in(page)
    page.get_by_role("link", name="New article").click()
    page.get_by_label("Title").fill("Connection pooling in practice")
    expect(page.get_by_label(re.compile("^Slug"))).to_have_value("connection-pooling-in-practice")
    page.get_by_label("Summary").fill("What pool sizes did to our p99.")
    page.get_by_label("Category").fill("Database")
    page.get_by_label(re.compile("^Tags")).fill("PostgreSQL, Performance")

    body = page.get_by_label(re.compile("^Body"))
    body.fill("## Why pools\n\n```python\nimport psycopg\npool_size = 20\n```\n")
    preview = page.locator("#preview")
    expect(preview.locator("h2")).to_have_text(re.compile("^Why pools"))
    expect(preview.locator("pre.highlight[data-lang=python] .kn")).to_have_text("import")
    expect(preview.locator("#reading-time")).to_have_text("1 min read")
    body.fill(body.input_value() + "\n" + "word " * 200)
    expect(preview.locator("#reading-time")).to_have_text("2 min read")

    # Autosave may have created the article already (it starts with the first keystroke), so the
    # first explicit save either creates it or saves into it.
    page.get_by_role("button", name="Save draft").click()
    expect(page.locator(".flash")).to_have_text(re.compile(r"^(Draft saved|Saved|No changes.*)\.$"))
    expect(page).to_have_url(re.compile(r"/studio/\d+/edit$"))
    edit_url = page.url

    # Edit and watch autosave keep it, without leaving the page or moving the cursor.
    body = page.get_by_label(re.compile("^Body"))
    body.click()
    body.press("ControlOrMeta+End")
    body.press_sequentially("\nPools hide latency until they do not.", delay=5)
    expect(page.locator("#autosave-status")).to_contain_text("Autosaved at", timeout=15_000)
    expect(body).to_be_focused()
    page.get_by_role("button", name="Save draft").click()

    page.get_by_role("link", name="History").click()
    page.get_by_role("button", name="Compare").click()
    expect(page.locator(".diff ins").first).to_contain_text("Pools hide latency")

    # A second tab (another editing session) saves first; our save meets the conflict page.
    page.goto(edit_url)
    other = page.context.new_page()
    other.goto(edit_url)
    other.get_by_text("Settings:").click()  # the settings fold away once the article exists
    other.get_by_label("Summary").fill("Changed in the other tab.")
    other.get_by_role("button", name="Save draft").click()
    expect(other.locator(".flash")).to_have_text("Saved.")
    other.close()

    page.get_by_text("Settings:").click()
    page.get_by_label("Summary").fill("Changed in this tab.")
    page.get_by_role("button", name="Save draft").click()
    # Both tabs are this author's: the page says so instead of blaming "someone else".
    expect(page.get_by_role("heading", level=1)).to_have_text(
        "You saved a newer version in another tab"
    )
    expect(page.locator(".field-changes")).to_contain_text("Changed in the other tab.")
    expect(page.get_by_label("Summary")).to_have_value("Changed in this tab.")
    # The browser logs the conflict page's 409 status; that one is the point of this step.
    assert all("409" in error for error in page.console_errors)
    page.console_errors.clear()
    page.get_by_role("button", name="Save mine as a new revision").click()
    expect(page.locator(".flash")).to_have_text("Saved.")

    page.get_by_role("button", name="Save and submit for review").click()
    expect(page.locator(".flash")).to_have_text("Saved and submitted for review.")
    expect(page.locator(".editor-state .badge")).to_have_text("In review")
