"""A reader in a real browser: live search, chips, history, articles, keyboard, accessibility."""

from __future__ import annotations

import contextlib
import re

import pytest
from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import Route, expect

pytestmark = pytest.mark.browser

ALL_COUNT = "8 articles"


def mark_page(page) -> None:  # noqa: ANN001
    """Leave a marker in the window: it survives htmx swaps and vanishes on a full page load."""
    page.evaluate("window.__sameDocument = true")


def same_document(page) -> bool:  # noqa: ANN001
    return page.evaluate("window.__sameDocument === true")


def release(held: list[Route]) -> None:
    """Let held answers go; one already replaced or aborted cannot, which is the point."""
    for route in held:
        with contextlib.suppress(PlaywrightError):
            route.continue_()


def backend_chip(page):  # noqa: ANN001, ANN201
    return page.get_by_role("navigation", name="Categories").get_by_role(
        "link", name=re.compile(r"^Backend")
    )


def expect_kube_in_backend(page) -> None:  # noqa: ANN001
    """The address, the box and the list all say: "kube", in Backend."""
    expect(page).to_have_url(re.compile(r"/\?q=kube&category=backend$"))
    expect(page.locator("#q")).to_have_value("kube")
    expect(page.locator("#result-count")).to_have_text(re.compile(r"for “kube” in Backend$"))


def test_typing_filters_in_place_and_updates_the_address(page):
    page.goto("/")
    expect(page.locator("#result-count")).to_have_text(ALL_COUNT)
    mark_page(page)
    page.locator("#q").press_sequentially("kube", delay=40)
    expect(page.locator("#result-count")).to_have_text("1 article for “kube”")
    expect(page.locator(".card-title")).to_have_text(
        ["Docker to Kubernetes: A Practical Path for Backend Engineers"]
    )
    expect(page.locator(".card-title mark")).to_have_text("Kubernetes")
    expect(page).to_have_url(re.compile(r"/\?q=kube$"))
    assert same_document(page)
    # The search box keeps focus and what was typed.
    expect(page.locator("#q")).to_be_focused()
    expect(page.locator("#q")).to_have_value("kube")

    page.locator("#q").fill("")
    expect(page.locator("#result-count")).to_have_text(ALL_COUNT)
    expect(page).to_have_url(re.compile(r"/$"))  # not /?q=: an empty box is no search


def test_no_match_shows_the_empty_state_and_clearing_restores(page):
    page.goto("/")
    page.locator("#q").fill("zzzzqqq")
    expect(page.locator(".empty-state")).to_contain_text("No articles match “zzzzqqq”")
    page.get_by_role("link", name="Clear the search and filters").click()
    expect(page.locator("#result-count")).to_have_text(ALL_COUNT)
    expect(page).to_have_url(re.compile(r"/$"))
    # The search box says what the address and the list say: nothing typed any more. The link
    # went with the list it was in, and the focus goes where the reader starts again.
    expect(page.locator("#q")).to_have_value("")
    expect(page.locator("#q")).to_be_focused()


def test_the_tab_title_follows_the_filters_as_a_full_page_load_would(page):
    # Every history entry was "Tech Blog" with JavaScript on; without, "“celery” · Tech Blog".
    page.goto("/")
    expect(page).to_have_title("Tech Blog")
    backend_chip(page).click()
    expect(page).to_have_title("Backend · Tech Blog")
    page.locator("#q").press_sequentially("celery", delay=30)
    expect(page).to_have_title("“celery” · Backend · Tech Blog")
    page.go_back()
    expect(page).to_have_title("Backend · Tech Blog")


def test_chips_filter_combine_with_text_and_back_restores(page):
    page.goto("/")
    mark_page(page)
    chips = page.get_by_role("navigation", name="Categories")
    chips.get_by_role("link", name=re.compile(r"^Backend")).click()
    expect(page.locator("#result-count")).to_have_text("3 articles in Backend")
    expect(page).to_have_url(re.compile(r"/\?category=backend$"))
    expect(chips.locator("[aria-current=page]")).to_have_text(re.compile(r"^Backend"))

    page.locator("#q").press_sequentially("celery", delay=30)
    expect(page.locator("#result-count")).to_have_text("1 article for “celery” in Backend")
    expect(page).to_have_url(re.compile(r"/\?q=celery&category=backend$"))
    assert same_document(page)

    page.go_back()
    expect(page).to_have_url(re.compile(r"/\?category=backend$"))
    expect(page.locator("#result-count")).to_have_text("3 articles in Backend")
    page.go_back()
    expect(page.locator("#result-count")).to_have_text(ALL_COUNT)
    expect(page.locator(".card")).to_have_count(8)
    page.go_forward()
    expect(page.locator("#result-count")).to_have_text("3 articles in Backend")


def test_a_chip_clicked_before_the_typed_words_were_sent_keeps_them(page):
    # The live search waits 250 ms after the last key; a chip clicked in that moment filters,
    # and the words typed then search within it, instead of being wiped from the box.
    page.goto("/")
    page.locator("#q").press_sequentially("kube", delay=10)
    backend_chip(page).click()
    expect_kube_in_backend(page)


def test_a_chip_whose_answer_comes_after_the_search_was_sent_keeps_both(page):
    # On a slow connection the search (250 ms after the last key) leaves before the chip's
    # answer has put the chip's filter into the form: whichever answer came last won, and the
    # one without the chip came last here. The chip's request is held until the search's
    # answer is in, as a slow network would.
    page.goto("/")
    held: list[Route] = []

    def hold_the_first(route: Route) -> None:
        if held:
            route.continue_()
        else:
            held.append(route)

    page.route(re.compile(r"category=backend"), hold_the_first)
    with page.expect_response(re.compile(r"q=kube")):
        page.locator("#q").press_sequentially("kube", delay=10)
        backend_chip(page).click()
    release(held)
    expect_kube_in_backend(page)


def test_words_typed_in_two_bursts_while_the_chip_is_awaited_keep_the_chip(page):
    # The first search takes the chip's filter from the chip's request; the second, sent before
    # any answer put the chip into the form, must take it too (it replaces the first).
    page.goto("/")
    held: list[Route] = []
    # Every answer with the chip waits, as on a slow connection.
    page.route(re.compile(r"category=backend"), lambda route: held.append(route))
    with page.expect_request(re.compile(r"/\?q=ku&category=backend$")):
        page.locator("#q").press_sequentially("ku", delay=10)
        backend_chip(page).click()
    with page.expect_request(re.compile(r"/\?q=kube&category=backend$")):
        page.locator("#q").press("End")
        page.locator("#q").press_sequentially("be", delay=10)
    release(held)
    expect_kube_in_backend(page)


def test_a_search_still_on_its_way_when_a_chip_is_clicked_cannot_drop_the_chip(page):
    # The search asked for the words without the chip; its answer, coming last, dropped it.
    page.goto("/")
    held: list[Route] = []
    page.route(re.compile(r"/\?q=kube$"), lambda route: held.append(route))
    with page.expect_request(re.compile(r"/\?q=kube$")):
        page.locator("#q").press_sequentially("kube", delay=10)
    chip = backend_chip(page)
    with page.expect_event(
        "requestfailed", lambda request: request.url.endswith("/?q=kube"), timeout=5000
    ):
        chip.click()  # the search is aborted: it can no longer answer
    expect(page.locator("#result-count")).to_have_text(re.compile(r"for “kube” in Backend$"))
    release(held)
    expect_kube_in_backend(page)


def test_a_chip_clicked_twice_then_words_typed_keep_both(page):
    # The second click waited behind the first; the search replaced the first, which let the
    # second go, and it replaced the search that had the words.
    page.goto("/")
    held: list[Route] = []
    page.route(re.compile(r"/\?category=backend$"), lambda route: held.append(route))
    backend_chip(page).click()
    backend_chip(page).click()
    with page.expect_request(re.compile(r"/\?q=kube&category=backend$")):
        page.locator("#q").press_sequentially("kube", delay=10)
    release(held)
    expect_kube_in_backend(page)


def test_after_a_chip_answered_with_an_error_a_search_keeps_the_chip(page):
    # htmx 4 swaps an error answer (errors/_fragment.html) and pushes its address; the list's
    # hidden fields went with it, so the next search dropped the chip the address showed. The
    # fragment's Reload link, failing too, must not make the search forget it either.
    page.goto("/")
    fragment = (
        '<div id="results" class="results" data-hx-boost-inherited="target:#results'
        ' swap:outerMorph" data-hx-sync-inherited="this:replace"><div class="empty-state"'
        ' role="alert"><p>Service Unavailable: busy</p>'
        '<p><a class="button" href="/?category=backend">Reload</a></p></div></div>'
    )
    answers = iter(["503", "no answer"])

    def fail(route: Route) -> None:
        if next(answers, "") == "503":
            route.fulfill(status=503, body=fragment, content_type="text/html")
        else:
            route.abort()

    page.route(re.compile(r"/\?category=backend$"), fail)
    backend_chip(page).click()
    expect(page.locator("#results")).to_contain_text("Service Unavailable")
    with page.expect_event("requestfailed", lambda r: "category=backend" in r.url):
        page.get_by_role("link", name="Reload").click()
    with page.expect_request(re.compile(r"/\?q=kube")) as search:
        page.locator("#q").press_sequentially("kube", delay=10)
    assert search.value.url.endswith("/?q=kube&category=backend")
    page.console_errors.clear()  # the 503 and the failed reload themselves


def test_back_while_a_chip_is_awaited_shows_the_page_before_it(page):
    # The chip's answer, landing after Back had begun, pushed its address over the restored page.
    page.goto("/")
    with page.expect_response(re.compile(r"/\?q=kube$")):
        page.locator("#q").press_sequentially("kube", delay=10)
    held: list[Route] = []
    page.route(re.compile(r"category=backend"), lambda route: held.append(route))
    with page.expect_request(re.compile(r"category=backend")):
        backend_chip(page).click()
    with page.expect_event("requestfailed", lambda r: "category=backend" in r.url, timeout=5000):
        page.go_back()
    release(held)
    expect(page).to_have_url(re.compile(r"/$"))
    expect(page.locator("#result-count")).to_have_text(ALL_COUNT)


def test_a_search_typed_just_before_back_cannot_land_over_the_restored_page(page):
    # The search waits 250 ms after the last key; Back in that moment restored the page
    # before, but the search, sent meanwhile from the old page, answered first and pushed
    # its address over the restored page.
    page.goto("/")
    with page.expect_response(re.compile(r"category=backend")):
        backend_chip(page).click()
    held: list[Route] = []
    page.route(
        re.compile(r"/"),
        lambda route: (
            held.append(route)
            if route.request.headers.get("hx-history-restore-request")
            else route.continue_()
        ),
    )
    sent: list[str] = []
    page.on("request", lambda request: sent.append(request.url))
    page.locator("#q").press_sequentially("kube", delay=10)
    page.go_back()
    page.wait_for_timeout(500)  # past the search's 250 ms: it is refused, not sent
    assert not [url for url in sent if "q=kube" in url]
    release(held)
    expect(page).to_have_url(re.compile(r"/$"))
    expect(page.locator("#result-count")).to_have_text(ALL_COUNT)


def test_reload_and_shared_link_show_the_same_filter(page):
    page.goto("/?q=index&category=database")
    expect(page.locator("#q")).to_have_value("index")
    expect(page.locator("#result-count")).to_have_text("1 article for “index” in Database")
    page.reload()
    expect(page.locator("#result-count")).to_have_text("1 article for “index” in Database")


def test_tag_link_filters_and_open_an_article(page):
    page.goto("/")
    mark_page(page)
    page.locator(".card").first.get_by_role("link", name="NestJS", exact=True).click()
    expect(page.locator("#result-count")).to_have_text("1 article tagged NestJS")
    expect(page).to_have_url(re.compile(r"/\?tag=nestjs$"))
    assert same_document(page)  # the list's plain links swap it in place
    page.locator(".card-title a").first.click()
    expect(page.locator("h1")).to_have_text(
        "Building Scalable Microservices with Node.js and NestJS"
    )
    assert not same_document(page)  # a link out of the list loads the whole article page
    expect(page).to_have_title(re.compile(r"^Building Scalable Microservices"))
    expect(page.locator(".prose pre.highlight").first).to_be_visible()
    expect(page.locator(".provenance")).to_contain_text("AI-generated · Reviewed by Dennis Atonya")


def test_slash_focuses_the_search(page):
    page.goto("/")
    expect(page.locator(".search-key")).to_be_visible()  # the hint, where the key works
    page.locator("body").press("/")
    expect(page.locator("#q")).to_be_focused()


def test_without_javascript_the_form_and_links_still_work(browser, live_server):
    context = browser.new_context(base_url=live_server.url, java_script_enabled=False)
    page = context.new_page()
    page.goto("/")
    expect(page.locator(".search-key")).to_be_hidden()  # "/" does nothing without JavaScript
    page.locator("#q").fill("pkce")
    page.locator("#q").press("Enter")
    expect(page).to_have_url(re.compile(r"/\?q=pkce$"))
    expect(page.locator("#result-count")).to_have_text("1 article for “pkce”")
    page.get_by_role("navigation", name="Categories").get_by_role(
        "link", name=re.compile("^Security")
    ).click()
    expect(page).to_have_url(re.compile(r"/\?q=pkce&category=security$"))
    expect(page.locator(".card")).to_have_count(1)
    context.close()


def test_usable_at_320px(browser, live_server):
    context = browser.new_context(base_url=live_server.url, viewport={"width": 320, "height": 640})
    page = context.new_page()
    for path in ("/", "/articles/docker-to-kubernetes-a-practical-path-for-backend-engineers"):
        page.goto(path)
        overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 0, f"{path} scrolls sideways by {overflow}px at 320px"
    context.close()


@pytest.mark.parametrize(
    "path",
    [
        "/",
        "/?q=kube",
        "/articles/oauth2-openid-connect-a-practical-implementation-guide",
        "/login",
        "/no-such-page",
    ],
)
@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_no_accessibility_violations(page, path, scheme):
    from axe_playwright_python.sync_playwright import Axe

    page.emulate_media(color_scheme=scheme)
    response = page.goto(path)
    if response.status == 404:
        page.console_errors.clear()  # the browser logs the 404 itself; that one is expected
    results = Axe().run(page)
    violations = [
        f"{v['id']}: {v['help']} ({len(v['nodes'])}x, e.g. {v['nodes'][0]['html'][:120]})"
        for v in results.response["violations"]
    ]
    assert not violations, "\n".join(violations)
