"""The review loop in a real browser: nothing a reviewer types is lost, fixes happen in place,
re-reviews open on what changed, the queue says who is waiting, and a phone shows the decision."""

from __future__ import annotations

import re
from dataclasses import replace

import pytest
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import expect
from sqlalchemy import select

from blog.articles import Draft, create_article, draft_from, latest_revision, save_draft
from blog.extensions import db
from blog.models import Article, User
from blog.workflow import transition

from ..conftest import ADMIN, AUTHOR, PASSWORD

pytestmark = pytest.mark.browser

BODY = "\n\n".join(f"Paragraph {i}: replicas lag when one worker applies it." for i in range(12))


def submitted_draft(live_server, title: str, body: str = BODY) -> int:  # noqa: ANN001
    """Create a draft as the demo author and submit it, as the studio would; return its id."""
    with live_server.app.app_context():
        author = db.session.scalar(select(User).filter_by(email=AUTHOR))
        draft = Draft(title=title, body=body, summary="A summary.", category="Database",
                      tags=["PostgreSQL"])  # fmt: skip
        article, _revision = create_article(draft, author, kind="edit")
        db.session.commit()
        transition(article, "submit", author)
        db.session.commit()
        return article.id


def author_edits(live_server, article_id: int, body: str) -> None:  # noqa: ANN001
    """Save a new revision as the author, as an autosave from their open editor would."""
    with live_server.app.app_context():
        article = db.session.get(Article, article_id)
        author = db.session.scalar(select(User).filter_by(email=AUTHOR))
        draft = replace(draft_from(latest_revision(article)), body=body)
        save_draft(article, draft, author, editing_session="author-tab", autosave=True)
        db.session.commit()


def sign_in_as_admin(page) -> None:  # noqa: ANN001
    page.goto("/login")
    page.get_by_label("E-mail").fill(ADMIN)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(re.compile(r"/review/$"))  # admins land on the queue


def test_a_reviewers_comment_survives_a_concurrent_edit(page, live_server):
    article_id = submitted_draft(live_server, "Replica lag, first take")
    sign_in_as_admin(page)
    page.goto(f"/review/{article_id}")
    comment = "The second paragraph needs the numbers from the benchmark. " * 8
    page.get_by_label(re.compile("^Comment to the author")).fill(comment)
    author_edits(live_server, article_id, BODY + "\n\nA paragraph the author added meanwhile.")
    page.get_by_role("button", name="Request changes").click()

    notice = page.locator("#changed-under-you")
    expect(notice).to_contain_text("You read revision 1")
    page.console_errors.clear()  # the page answers 409 Conflict, which the console reports
    expect(notice.locator("table.diff")).to_contain_text("A paragraph the author added meanwhile.")
    expect(page.get_by_label(re.compile("^Comment to the author"))).to_have_value(comment)
    page.get_by_role("button", name="Request changes").click()  # one click, on revision 2
    expect(page.locator(".flash")).to_contain_text("Changes requested")


def test_an_admin_fixes_and_approves_in_place(page, live_server):
    article_id = submitted_draft(live_server, "Replica lag with a typo", BODY + "\n\nTeh end.")
    sign_in_as_admin(page)
    page.goto(f"/review/{article_id}")
    page.get_by_text("Edit the text here").click()
    body = page.get_by_label("Text (Markdown)")
    body.fill(body.input_value().replace("Teh end.", "The end."))
    page.get_by_role("button", name="Save and approve").click()
    dialog = page.locator("#confirm-dialog")
    expect(dialog).to_be_visible()
    expect(dialog).to_contain_text("Readers see it within a second")
    dialog.get_by_role("button", name="Save and approve").click()
    flash = page.locator(".flash")
    expect(flash).to_contain_text("Approved and published.")
    flash.get_by_role("link", name=re.compile("Replica lag with a typo")).click()
    expect(page.locator("h1")).to_have_text("Replica lag with a typo")
    expect(page.locator("article.post")).to_contain_text("The end.")
    expect(page.locator("article.post")).not_to_contain_text("Teh end.")


def test_cancelling_the_confirmation_publishes_nothing(page, live_server):
    article_id = submitted_draft(live_server, "Not yet")
    sign_in_as_admin(page)
    page.goto(f"/review/{article_id}")
    page.locator(".decision-form").get_by_role("button", name="Approve", exact=True).click()
    page.locator("#confirm-dialog").get_by_role("button", name="Cancel").click()
    expect(page.locator("#confirm-dialog")).to_be_hidden()
    expect(page).to_have_url(re.compile(rf"/review/{article_id}$"))
    expect(page.locator(".badge.status-in_review")).to_be_visible()


def test_a_re_review_opens_on_the_changes_since_the_request(page, live_server):
    article_id = submitted_draft(live_server, "Replica lag, needs a conclusion")
    sign_in_as_admin(page)
    page.goto(f"/review/{article_id}")
    page.get_by_label(re.compile("^Comment to the author")).fill("Add a conclusion.")
    page.get_by_role("button", name="Request changes").click()
    page.get_by_role("link", name=re.compile("^Waiting on the author")).click()
    row = page.locator("#queue tbody tr").filter(has_text="Replica lag, needs a conclusion")
    expect(row).to_have_count(1)
    expect(row.locator("td").nth(3)).to_have_text("under a minute")

    author_edits(live_server, article_id, BODY + "\n\nIn conclusion: one worker is the bottleneck.")
    with live_server.app.app_context():
        author = db.session.scalar(select(User).filter_by(email=AUTHOR))
        transition(db.session.get(Article, article_id), "submit", author)
        db.session.commit()
    page.get_by_role("link", name=re.compile("^Waiting for review")).click()
    page.get_by_role("link", name="Replica lag, needs a conclusion").click()
    tabs = page.locator(".diff-tabs")
    expect(tabs.locator("[aria-current]")).to_have_text(
        re.compile("^Since you asked for changes \\(revision 1\\)")
    )
    expect(page.locator("#diffs table.diff")).to_contain_text("one worker is the bottleneck")
    expect(page.locator("#diffs .diff-skip")).to_have_count(1)  # unchanged paragraphs folded


def test_on_a_phone_the_decision_comes_first(page, live_server):
    article_id = submitted_draft(live_server, "Read on a phone")
    sign_in_as_admin(page)
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(f"/review/{article_id}")
    approve = page.locator(".decision-form").get_by_role("button", name="Approve", exact=True)
    box = approve.bounding_box()
    assert box is not None and box["y"] + box["height"] <= 844, box
    # The page itself never scrolls sideways: wide tables scroll in their own box.
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390, width
    page.goto("/review/audit")
    assert page.evaluate("document.documentElement.scrollWidth") <= 390


def test_on_a_phone_no_page_scrolls_sideways(page, live_server):
    """Long unbroken text (a digest, an image's address) and labels only screen readers see
    (in tables that scroll in their own box) once made whole pages pan sideways."""
    from io import BytesIO

    from PIL import Image

    from blog.media import process, save

    picture = BytesIO()
    Image.new("RGB", (40, 30), "teal").save(picture, "PNG")
    with live_server.app.app_context():
        author = db.session.scalar(select(User).filter_by(email=AUTHOR))
        media = save(process(picture.getvalue()), author.id)
        image = f"![A chart](/media/{media.key})"
        db.session.commit()
    article_id = submitted_draft(live_server, "With a picture", body=f"{BODY}\n\n{image}")
    sign_in_as_admin(page)
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto("/")
    ai_article = page.locator(".card", has_text="AI-generated").first.locator(".card-title a")
    changes = ai_article.get_attribute("href") + "/changes"
    for path in (changes, f"/review/{article_id}", "/review/users", "/studio/media"):
        page.goto(path)
        overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 0, f"{path} scrolls sideways by {overflow}px"


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_the_review_loop_pages_have_no_accessibility_violations(page, live_server, scheme):
    article_id = submitted_draft(live_server, "Checked for accessibility")
    author_edits(live_server, article_id, BODY + "\n\nEdited while in review.")
    sign_in_as_admin(page)
    page.emulate_media(color_scheme=scheme)
    found = []
    for path in (
        f"/review/{article_id}",
        f"/review/{article_id}?diff=submitted",
        "/review/?tab=author",
    ):
        page.goto(path)
        for violation in Axe().run(page).response["violations"]:
            node = violation["nodes"][0]["html"][:120]
            found.append(f"{path} {violation['id']}: {violation['help']} (e.g. {node})")
    # The stale-decision page (a POST answer) and the open confirmation dialog.
    page.goto(f"/review/{article_id}")
    page.get_by_text("Edit the text here").click()
    page.locator(".decision-form").get_by_role("button", name="Approve", exact=True).click()
    expect(page.locator("#confirm-dialog")).to_be_visible()
    for violation in Axe().run(page).response["violations"]:
        found.append(f"dialog {violation['id']}: {violation['help']}")
    assert not found, "\n".join(found)
