"""The editor for long pieces in a real browser: autosave from the first keystroke, the live
article warning, Tab in code blocks, the preview that follows the cursor, tabs on phones, axe."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from ..conftest import ADMIN
from .conftest import AUTHOR, PASSWORD, sign_in

pytestmark = pytest.mark.browser

PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 900}


def open_page(browser, live_server, viewport: dict[str, int]):  # noqa: ANN001, ANN201
    """A page of the given size that records console errors, as the `page` fixture does."""
    context = browser.new_context(base_url=live_server.url, viewport=viewport)
    page = context.new_page()
    page.set_default_timeout(10_000)
    page.console_errors = []
    page.on("console", lambda m: m.type == "error" and page.console_errors.append(m.text))
    page.on("pageerror", lambda error: page.console_errors.append(str(error)))
    return page


def body_of(page):  # noqa: ANN001, ANN201 - a Playwright locator
    return page.get_by_label(re.compile("^Body"))


def test_autosave_starts_before_the_first_save_and_shows_local_time(page):
    sign_in(page)
    page.goto("/studio/new")
    expect(page.locator("#autosave-status")).to_contain_text("autosave starts with your first")
    page.evaluate("window.__sameDocument = true")
    body = body_of(page)
    body.click()
    body.press_sequentially("A thought before any title.", delay=5)

    status = page.locator("#autosave-status")
    expect(status).to_contain_text("Autosaved at", timeout=15_000)
    # The page now edits the article the autosave created, without a reload.
    expect(page).to_have_url(re.compile(r"/studio/\d+/edit$"))
    assert page.evaluate("window.__sameDocument === true")
    # The Save buttons now save into that article (not through /studio/new again).
    expect(page.locator("#editor-form")).to_have_attribute(
        "action", re.compile(r"/studio/\d+/edit$")
    )
    # And the page offers what an article's editor offers: submitting, its history.
    expect(page.get_by_role("button", name="Save and submit for review")).to_be_visible()
    expect(page.get_by_role("link", name="History")).to_have_attribute(
        "href", re.compile(r"/studio/\d+/history$")
    )
    expect(page).to_have_title(re.compile(r"^Edit article"))
    expect(body).to_be_focused()
    # The time is the reader's local time (the browser formats it), not the server's UTC text.
    time = status.locator("time")
    expect(time).to_have_attribute("datetime", re.compile(r"Z$"))
    expect(time).not_to_contain_text("UTC")
    # The checks panel appears for the new article and runs the review checks on what was saved.
    expect(page.locator("#checks .checklist")).to_be_visible()
    # The preview shows the provisional header until a title is typed.
    expect(page.locator("#preview .post-title")).to_have_text("Untitled draft")

    page.get_by_label("Title").fill("Thoughts on pools")
    expect(page.locator("#preview .post-title")).to_have_text("Thoughts on pools")
    page.get_by_role("button", name="Save draft").click()
    expect(page.locator(".flash")).to_have_text(re.compile(r"^(Saved|No changes.*)\.$"))
    expect(body_of(page)).to_have_value("A thought before any title.")
    expect(page.get_by_label("Title")).to_have_value("Thoughts on pools")
    page.goto("/studio/")
    expect(page.get_by_role("link", name="Thoughts on pools")).to_have_count(1)
    expect(page.get_by_role("link", name="Untitled draft")).to_have_count(0)


def test_a_live_article_warns_before_the_first_keystroke(page):
    sign_in(page)
    page.goto("/studio/1/edit")
    warning = page.locator("#live-warning")
    expect(warning).to_contain_text("This article is live.")
    body = body_of(page)
    before = body.input_value()
    expect(body).not_to_be_editable()
    body.click()
    page.keyboard.type("x")
    expect(body).to_have_value(before)  # nothing typed before the author has read the warning

    checked = page.locator("#checks .hint").last
    expect(checked).to_contain_text("Checked revision")
    checked_before = checked.inner_text()

    page.get_by_role("button", name="Start a new draft").click()
    expect(body).to_be_editable()
    expect(body).to_be_focused()
    expect(warning).to_contain_text("Editing a new draft")
    body.press("ControlOrMeta+End")
    body.press_sequentially("\nA new paragraph.", delay=5)
    expect(page.locator("#autosave-status")).to_contain_text("Autosaved at", timeout=15_000)
    # The checks panel looked again after the autosave: it names the revision just saved.
    expect(checked).not_to_have_text(checked_before)


def test_tab_indents_inside_code_blocks_only(page):
    sign_in(page)
    page.goto("/studio/new")
    body = body_of(page)
    body.fill("Intro.\n\n```python\nx = 1\n```\n\nOutro.")
    # In the code block: Tab indents the line, the focus stays.
    body.evaluate(
        "(el) => el.setSelectionRange(el.value.indexOf('x = 1'), el.value.indexOf('x = 1'))"
    )
    body.press("Tab")
    expect(body).to_have_value("Intro.\n\n```python\n    x = 1\n```\n\nOutro.")
    expect(body).to_be_focused()
    body.press("Shift+Tab")
    expect(body).to_have_value("Intro.\n\n```python\nx = 1\n```\n\nOutro.")
    # Esc, then Tab, leaves the text box even inside the block.
    body.press("Escape")
    body.press("Tab")
    expect(body).not_to_be_focused()
    # Outside any code block Tab moves on as usual.
    body.focus()
    body.press("ControlOrMeta+End")
    body.press("Tab")
    expect(body).not_to_be_focused()
    expect(body).to_have_value("Intro.\n\n```python\nx = 1\n```\n\nOutro.")


def test_the_preview_follows_the_cursor_on_a_wide_screen(browser, live_server):
    page = open_page(browser, live_server, DESKTOP)
    sign_in(page)
    page.goto("/studio/new")
    sections = "".join(
        f"## Section {n}\n\n" + "A sentence that fills the section. " * 40 + "\n\n"
        for n in range(1, 13)
    )
    body = body_of(page)
    body.fill(sections)
    panel = page.locator("#preview-panel")
    expect(panel.locator("h2", has_text="Section 12")).to_be_attached()
    body.press("ControlOrMeta+End")
    body.press("End")  # a keyup: the preview catches up with the cursor
    expect(panel.locator("h2", has_text="Section 12")).to_be_in_viewport()
    expect(panel.locator(".prose h2").first).not_to_be_in_viewport()
    body.press("ControlOrMeta+Home")
    body.press("Home")
    expect(panel.locator(".post-title")).to_be_in_viewport()
    assert page.console_errors == []
    page.context.close()


def test_phones_get_edit_and_preview_tabs_and_no_box_scrolling_inside_the_page(
    browser, live_server
):
    page = open_page(browser, live_server, PHONE)
    sign_in(page)
    page.goto("/studio/new")
    body = body_of(page)
    body.fill("## Hello\n\n" + "Words for a long article. " * 400)
    preview_tab = page.get_by_role("tab", name="Preview")
    expect(page.locator("#preview-panel")).to_be_hidden()
    preview_tab.click()
    expect(preview_tab).to_have_attribute("aria-selected", "true")
    expect(page.locator("#preview-panel")).to_be_visible()
    expect(body).to_be_hidden()
    expect(page.locator("#preview h2")).to_have_text(re.compile("^Hello"))
    nested = page.locator("#preview-panel").evaluate(
        "(el) => getComputedStyle(el).overflowY !== 'visible' || el.scrollHeight > el.clientHeight"
    )
    assert not nested, "the preview scrolls inside its own box on a phone"
    overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0
    page.get_by_role("tab", name="Edit").click()
    expect(body).to_be_visible()
    assert page.console_errors == []
    page.context.close()


@pytest.mark.parametrize("scheme", ["light", "dark"])
@pytest.mark.parametrize("viewport", [PHONE, DESKTOP], ids=["phone", "desktop"])
def test_editor_and_conflict_pages_have_no_accessibility_violations(
    browser, live_server, scheme, viewport
):
    from axe_playwright_python.sync_playwright import Axe

    page = open_page(browser, live_server, viewport)
    context = page.context
    page.emulate_media(color_scheme=scheme)
    sign_in(page)
    found = []

    def check(label: str) -> None:
        for violation in Axe().run(page).response["violations"]:
            node = violation["nodes"][0]["html"][:120]
            found.append(f"{label} {violation['id']}: {violation['help']} (e.g. {node})")

    page.goto("/studio/new")
    body_of(page).fill("## A heading\n\n| Name | Value |\n| --- | --- |\n| a | b |\n")
    expect(page.locator("#preview table")).to_be_attached()
    check("new")
    if viewport is PHONE:
        page.get_by_role("tab", name="Preview").click()
        check("new, preview tab")
    page.goto("/studio/1/edit")
    check("live article")

    # The conflict page: a second tab saves first.
    url = "/studio/1/edit"
    other = context.new_page()
    other.goto(url)
    other.get_by_role("button", name="Start a new draft").click()
    body_of(other).fill(body_of(other).input_value() + "\nOther tab.")
    other.get_by_role("button", name="Save draft").click()
    expect(other.locator(".flash")).to_have_text("Saved.")
    other.close()
    page.get_by_role("button", name="Start a new draft").click()
    body_of(page).fill(body_of(page).input_value() + "\nThis tab.")
    page.get_by_role("button", name="Save draft").click()
    expect(page.get_by_role("heading", level=1)).to_have_text(
        "You saved a newer version in another tab"
    )
    check("conflict")
    # The browser logs the conflict page's 409 status; that one is the point of this step.
    assert [e for e in page.console_errors if "409" not in e] == []
    context.close()
    assert not found, "\n".join(found)


def test_a_title_typed_before_the_script_ran_still_names_the_slug(page):
    # On a slow network the author may type before editor.js has run: its input event is gone.
    sign_in(page)
    held = []
    page.route("**/static/js/editor.js*", lambda route: held.append(route))
    page.goto("/studio/new", wait_until="commit")
    page.get_by_label("Title").fill("Connection pooling in practice")
    for _ in range(100):  # the parser may reach the script tag after the title
        if held:
            break
        page.wait_for_timeout(50)
    held[0].continue_()
    expect(page.get_by_label(re.compile("^Slug"))).to_have_value("connection-pooling-in-practice")


def _write_until_signed_out_elsewhere(page) -> str:  # noqa: ANN001
    """Start an article, have it autosaved, sign out in another tab, type on; return its URL."""
    sign_in(page)
    page.goto("/studio/new")
    page.get_by_label("Title").fill("Kept across a sign-in")
    body = body_of(page)
    body.click()
    body.press_sequentially("First words.", delay=5)
    expect(page.locator("#autosave-status")).to_contain_text("Autosaved at", timeout=15_000)
    editor_url = page.url

    other = page.context.new_page()
    other.goto("/studio/")
    other.get_by_role("button", name="Sign out").click()
    # Closed only once the sign-out's page is in: a close racing a navigation's commit can
    # hang for ever in Chromium (crbug.com/536385539, microsoft/playwright#42068).
    expect(other.locator(".flash")).to_have_text("You are signed out.")
    other.close()

    body.press_sequentially(" Words typed after the sign-in ended.", delay=5)
    expect(page.locator("#autosave-status")).not_to_contain_text("Autosaved at", timeout=15_000)
    assert page.console_errors and all("400" in error for error in page.console_errors)
    page.console_errors.clear()  # the refused autosaves: expected here
    return editor_url


def _sign_in_again_after_a_reload(page, editor_url: str) -> None:  # noqa: ANN001
    page.once("dialog", lambda dialog: dialog.accept())  # "leave the page?" on reload
    page.reload()
    expect(page).to_have_url(re.compile(r"/login"))
    page.get_by_label("E-mail").fill(AUTHOR)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(editor_url)


def test_words_typed_after_the_sign_in_ended_come_back_after_signing_in_again(page):
    # Signed out in another tab while writing: the autosave is refused. Reloading leads to the
    # sign-in form; once signed in again, the editor offers the words this tab kept.
    editor_url = _write_until_signed_out_elsewhere(page)
    _sign_in_again_after_a_reload(page, editor_url)

    kept = page.locator("#kept-text")
    expect(kept).to_be_visible()
    expect(body_of(page)).to_have_value("First words.")
    kept.get_by_role("button", name="Put them back").click()
    expect(body_of(page)).to_have_value("First words. Words typed after the sign-in ended.")
    expect(page.locator("#autosave-status")).to_contain_text("Autosaved at", timeout=15_000)
    page.reload()  # saved now: nothing left to offer
    expect(page.locator("#kept-text")).to_be_hidden()
    expect(body_of(page)).to_have_value("First words. Words typed after the sign-in ended.")


def test_a_preview_refused_by_its_rate_limit_keeps_the_last_one(page):
    sign_in(page)
    page.goto("/studio/new")
    body = body_of(page)
    body.click()
    body.press_sequentially("## Kept heading\n\nSome words.", delay=5)
    expect(page.locator("#preview h2")).to_contain_text("Kept heading")
    page.route(
        "**/studio/preview",
        lambda route: route.fulfill(
            status=429, body="Too many requests in a short time.", headers={"Retry-After": "2"}
        ),
    )
    body.press_sequentially(" More words.", delay=5)
    page.wait_for_timeout(1_500)  # past the preview's 400 ms delay: the request was answered
    expect(page.locator("#preview h2")).to_contain_text("Kept heading")
    expect(page.locator("#preview")).not_to_contain_text("Too many")
    page.unroute("**/studio/preview")
    # Asked again once the limit allows (Retry-After, 5 s by default), without more typing.
    expect(page.locator("#preview")).to_contain_text("More words.", timeout=10_000)
    page.console_errors.clear()  # the browser logs the 429s this test made


def test_kept_words_put_back_over_someone_elses_newer_save_meet_the_conflict_check(
    page, browser, live_server
):
    editor_url = _write_until_signed_out_elsewhere(page)
    admin = browser.new_context(base_url=live_server.url).new_page()
    sign_in(admin, ADMIN)
    admin.goto(editor_url)
    body_of(admin).fill("The admin's careful rewrite.")
    admin.get_by_role("button", name="Save draft").click()
    expect(admin.locator(".flash")).to_have_text("Saved.")
    admin.context.close()

    _sign_in_again_after_a_reload(page, editor_url)
    expect(body_of(page)).to_have_value("The admin's careful rewrite.")
    page.locator("#kept-text").get_by_role("button", name="Put them back").click()
    status = page.locator("#autosave-status")
    expect(status).to_contain_text("saved a newer version", timeout=15_000)
    assert all("409" in error for error in page.console_errors)
    page.console_errors.clear()


def test_signing_out_in_the_tab_drops_the_words_it_kept(page):
    sign_in(page)
    page.goto("/studio/new")
    body_of(page).click()
    body_of(page).press_sequentially("Private words.", delay=5)
    page.wait_for_timeout(500)  # kept after 300 ms
    assert page.evaluate("Object.keys(sessionStorage).some((k) => k.startsWith('blog:unsaved:'))")
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Sign out").click()
    expect(page.locator(".flash")).to_have_text("You are signed out.")  # the new page is in
    assert not page.evaluate(
        "Object.keys(sessionStorage).some((k) => k.startsWith('blog:unsaved:'))"
    )
