"""Images in the editor, in a real browser: added by the button, by a drop and by a paste, each
asked for its alt text, shown at once in the preview, then on the published page; the media
list shows the upload and where it is used; axe-core stays clean with images on the page."""

from __future__ import annotations

import base64
import io
import re

import pytest
from axe_playwright_python.sync_playwright import Axe
from PIL import Image
from playwright.sync_api import expect
from sqlalchemy import select

from blog.articles import Draft, create_article
from blog.extensions import db
from blog.models import User

from ..conftest import ADMIN, AUTHOR, PASSWORD

pytestmark = pytest.mark.browser

MEDIA_MARKDOWN = r"!\[{alt}\]\(/media/[0-9a-f]{{64}}\.png\)"


def png(color: str = "red", size: tuple[int, int] = (64, 48)) -> bytes:
    """Return a small PNG, a real one that the server's Pillow check accepts."""
    buffer = io.BytesIO()
    Image.new("RGB", size, color).save(buffer, format="PNG")
    return buffer.getvalue()


def draft(live_server, title: str) -> int:  # noqa: ANN001
    """Create a draft as the demo author, as the studio would; return its id."""
    with live_server.app.app_context():
        author = db.session.scalar(select(User).filter_by(email=AUTHOR))
        article, _revision = create_article(
            Draft(title=title, body="Before the image.\n\n", summary="A summary.",
                  category="Database", tags=["PostgreSQL"]),
            author,
            kind="edit",
        )  # fmt: skip
        db.session.commit()
        return article.id


def sign_in(page, email: str) -> None:  # noqa: ANN001
    page.goto("/login")
    page.get_by_label("E-mail").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("button", name="Sign out")).to_be_visible()


def open_editor(page, article_id: int) -> None:  # noqa: ANN001
    """Open the editor with the cursor at the end of the text."""
    page.goto(f"/studio/{article_id}/edit")
    body = page.get_by_label(re.compile("^Body"))
    body.click()
    body.press("ControlOrMeta+End")


def describe(page, alt: str) -> None:  # noqa: ANN001
    """Answer the alt-text dialog the way an author would, with the keyboard."""
    dialog = page.get_by_role("dialog", name="Describe the image")
    expect(dialog).to_be_visible()
    expect(dialog.get_by_label("Alt text")).to_be_focused()
    dialog.get_by_label("Alt text").fill(alt)
    dialog.get_by_role("button", name="Insert image").click()
    expect(dialog).to_be_hidden()


def expect_inserted(page, alt: str) -> None:  # noqa: ANN001
    """The Markdown is in the text, the image in the preview, the toolbar says it worked."""
    body = page.get_by_label(re.compile("^Body"))
    expect(body).to_have_value(re.compile(MEDIA_MARKDOWN.format(alt=re.escape(alt))))
    expect(body).not_to_have_value(re.compile("Uploading image"))
    image = page.locator("#preview").get_by_role("img", name=alt)
    expect(image).to_be_visible()
    expect(image).to_have_js_property("complete", True)
    assert image.evaluate("img => img.naturalWidth") > 0
    expect(page.locator("[data-media-status]")).to_have_text(re.compile(r"^Image added"))


# A File built in the page from bytes the test passes in, then dropped or pasted onto the text.
DROP = """([data, name]) => {
  const bytes = Uint8Array.from(atob(data), (c) => c.charCodeAt(0));
  const transfer = new DataTransfer();
  transfer.items.add(new File([bytes], name, { type: "image/png" }));
  const body = document.getElementById("body");
  const init = { dataTransfer: transfer, bubbles: true, cancelable: true };
  body.dispatchEvent(new DragEvent("dragover", init));
  body.dispatchEvent(new DragEvent("drop", init));
}"""
PASTE = """([data, name]) => {
  const bytes = Uint8Array.from(atob(data), (c) => c.charCodeAt(0));
  const transfer = new DataTransfer();
  transfer.items.add(new File([bytes], name, { type: "image/png" }));
  const body = document.getElementById("body");
  const init = { clipboardData: transfer, bubbles: true, cancelable: true };
  body.dispatchEvent(new ClipboardEvent("paste", init));
}"""


def test_an_image_added_with_the_button_shows_in_the_preview_and_on_the_published_page(
    page, live_server
):
    article_id = draft(live_server, "Pool sizes, with a chart")
    sign_in(page, AUTHOR)
    open_editor(page, article_id)
    with page.expect_file_chooser() as chooser:
        page.get_by_role("button", name="Add image").click()
    chooser.value.set_files({"name": "chart.png", "mimeType": "image/png", "buffer": png()})
    describe(page, "Latency by pool size")
    expect_inserted(page, "Latency by pool size")
    body = page.get_by_label(re.compile("^Body"))
    assert body.input_value().startswith("Before the image.")

    page.get_by_role("button", name="Save and submit for review").click()
    expect(page.locator(".flash")).to_be_visible()

    page.get_by_role("button", name="Sign out").click()
    # The sign-out's page first: a navigation started while it loads is cut off by it.
    expect(page.locator(".flash")).to_have_text("You are signed out.")
    sign_in(page, ADMIN)
    page.goto(f"/review/{article_id}")
    page.locator(".decision-form").get_by_role("button", name="Approve", exact=True).click()
    page.locator("#confirm-dialog").get_by_role("button", name=re.compile("Approve")).click()
    flash = page.locator(".flash")
    expect(flash).to_contain_text("published")
    flash.get_by_role("link", name=re.compile("Pool sizes, with a chart")).click()
    published = page.locator("article.post").get_by_role("img", name="Latency by pool size")
    expect(published).to_be_visible()
    expect(published).to_have_js_property("complete", True)
    assert published.evaluate("img => img.naturalWidth") > 0

    # The admin's site-wide list shows it, used in the published article, with no Delete button.
    page.emulate_media(color_scheme="dark")
    page.goto("/studio/media")
    expect(page.locator("h1")).to_have_text("All images")
    row = page.locator("table.media-list tbody tr").filter(has_text="Pool sizes, with a chart")
    expect(row).to_have_count(1)
    expect(row.get_by_role("button", name=re.compile("^Delete"))).to_have_count(0)
    violations = Axe().run(page).response["violations"]
    assert not violations, [f"{v['id']}: {v['help']}" for v in violations]


def test_an_image_dropped_onto_the_text_goes_in_at_the_cursor(page, live_server):
    article_id = draft(live_server, "Dropped image")
    sign_in(page, AUTHOR)
    open_editor(page, article_id)
    page.evaluate(DROP, [base64.b64encode(png("blue")).decode(), "dropped.png"])
    expect(page.get_by_role("dialog")).to_contain_text("dropped.png")
    violations = Axe().run(page).response["violations"]  # with the alt-text dialog open
    assert not violations, [f"{v['id']}: {v['help']}" for v in violations]
    describe(page, "A blue square")
    expect_inserted(page, "A blue square")


def test_an_image_added_at_the_end_of_a_line_is_a_paragraph_of_its_own(page, live_server):
    # Right after "- two" the Markdown made the picture part of the list's last item.
    article_id = draft(live_server, "A list, then a picture")
    sign_in(page, AUTHOR)
    open_editor(page, article_id)
    body = page.get_by_label(re.compile("^Body"))
    body.press_sequentially("- one\n- two")
    page.evaluate(PASTE, [base64.b64encode(png("green")).decode(), "image.png"])
    describe(page, "A green square")
    expect_inserted(page, "A green square")
    assert re.search(r"- two\n\n!\[A green square\]\([^)]+\)$", body.input_value())
    expect(page.locator("#preview li img")).to_have_count(0)
    expect(page.locator("#preview").get_by_role("img", name="A green square")).to_be_visible()


def test_an_image_pasted_from_the_clipboard_goes_in_at_the_cursor(page, live_server):
    article_id = draft(live_server, "Pasted image")
    sign_in(page, AUTHOR)
    open_editor(page, article_id)
    page.evaluate(PASTE, [base64.b64encode(png("green")).decode(), "image.png"])
    describe(page, "A green square")
    expect_inserted(page, "A green square")


def test_a_file_that_is_not_an_image_is_refused_inline_and_cancel_inserts_nothing(
    page, live_server
):
    article_id = draft(live_server, "No image")
    sign_in(page, AUTHOR)
    open_editor(page, article_id)
    body = page.get_by_label(re.compile("^Body"))
    before = body.input_value()
    with page.expect_file_chooser() as chooser:
        page.get_by_role("button", name="Add image").click()
    chooser.value.set_files({"name": "notes.txt", "mimeType": "text/plain", "buffer": b"hello"})
    expect(page.locator("[data-media-status]")).to_have_text(re.compile("is not an image"))
    # A file that claims to be an image but is not: the server's 415 or 422 message shows inline.
    page.evaluate(DROP, [base64.b64encode(b"not really a png").decode(), "fake.png"])
    describe(page, "Nothing")
    expect(page.locator("[data-media-status]")).to_have_text(
        re.compile(r"^The image was not added: \S")
    )
    page.console_errors.clear()  # the refused upload's 4xx is reported by the console
    # A file over the size limit is refused before it is sent.
    page.evaluate(
        """() => {
          const transfer = new DataTransfer();
          transfer.items.add(new File([new Uint8Array(11 * 1024 * 1024)], "huge.png",
                                      { type: "image/png" }));
          const init = { dataTransfer: transfer, bubbles: true, cancelable: true };
          document.getElementById("body").dispatchEvent(new DragEvent("drop", init));
        }"""
    )
    expect(page.locator("[data-media-status]")).to_have_text(
        "“huge.png” is 11.0 MB: images may be at most 10.0 MB."
    )
    expect(page.get_by_role("dialog")).to_be_hidden()
    # Cancelling the dialog leaves the text as it was.
    page.evaluate(PASTE, [base64.b64encode(png()).decode(), "image.png"])
    page.get_by_role("dialog").get_by_role("button", name="Cancel").click()
    expect(page.get_by_role("dialog")).to_be_hidden()
    expect(body).to_have_value(before)


def test_the_media_list_shows_the_upload_and_its_use_and_axe_is_clean(page, live_server):
    article_id = draft(live_server, "Listed image")
    sign_in(page, AUTHOR)
    open_editor(page, article_id)
    page.evaluate(PASTE, [base64.b64encode(png("purple")).decode(), "image.png"])
    describe(page, "A purple square")
    expect_inserted(page, "A purple square")
    found = []
    found += [f"editor {v['id']}: {v['help']}" for v in Axe().run(page).response["violations"]]
    page.get_by_role("button", name="Save draft").click()
    expect(page.locator(".flash")).to_be_visible()

    page.get_by_role("link", name="Images of this article").click()
    expect(page.locator("h1")).to_have_text("Images of “Listed image”")
    row = page.locator("table.media-list tbody tr")
    expect(row).to_have_count(1)
    expect(row).to_contain_text("64 × 48 px")
    expect(row.get_by_role("link", name="Listed image")).to_be_visible()
    expect(row.get_by_role("button", name=re.compile("^Delete"))).to_have_count(0)  # it is used
    found += [f"media list {v['id']}: {v['help']}" for v in Axe().run(page).response["violations"]]
    assert not found, "\n".join(found)

    # Taken out of the text, the image can be deleted.
    open_editor(page, article_id)
    body = page.get_by_label(re.compile("^Body"))
    body.fill("Before the image.\n")
    page.get_by_role("button", name="Save draft").click()
    expect(page.locator(".flash")).to_be_visible()
    page.goto(f"/studio/{article_id}/media")
    row = page.locator("table.media-list tbody tr")
    expect(row).to_contain_text("Not used")
    row.get_by_role("button", name=re.compile("^Delete")).click()
    expect(page.locator(".flash")).to_have_text("Image deleted.")
    expect(page.locator("table.media-list")).to_have_count(0)


def test_a_new_article_takes_images_once_its_first_autosave_has_made_it(page, live_server):
    sign_in(page, AUTHOR)
    page.goto("/studio/new")
    with page.expect_file_chooser() as chooser:
        page.get_by_role("button", name="Add image").click()
    chooser.value.set_files({"name": "early.png", "mimeType": "image/png", "buffer": png()})
    expect(page.locator("[data-media-status]")).to_have_text(re.compile("once the draft"))
    expect(page.get_by_role("dialog")).to_be_hidden()

    page.get_by_label("Title").fill("A new article with an image")
    body = page.get_by_label(re.compile("^Body"))
    body.fill("First words.\n\n")
    expect(page.locator("#autosave-status [data-saved=yes]")).to_be_visible(timeout=15_000)
    body.press("ControlOrMeta+End")
    with page.expect_file_chooser() as chooser:
        page.get_by_role("button", name="Add image").click()
    chooser.value.set_files({"name": "late.png", "mimeType": "image/png", "buffer": png("navy")})
    describe(page, "A navy square")
    expect_inserted(page, "A navy square")
