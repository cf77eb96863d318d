"""Article tables in a real browser: no word in a cell breaks mid-word, on a phone or desktop."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.browser

# Each whitespace-separated word of each text node in a table cell, as pieces that may end a line
# (a break after a hyphen is an ordinary line break); a piece whose box spans two lines broke.
BROKEN_WORDS = """() => {
  const broken = [];
  for (const cell of document.querySelectorAll(".prose th, .prose td")) {
    const walker = document.createTreeWalker(cell, NodeFilter.SHOW_TEXT);
    for (let node = walker.nextNode(); node; node = walker.nextNode()) {
      for (const match of node.data.matchAll(/[^\\s-]+-?/g)) {
        const range = document.createRange();
        range.setStart(node, match.index);
        range.setEnd(node, match.index + match[0].length);
        const tops = new Set([...range.getClientRects()]
          .filter((rect) => rect.width > 0).map((rect) => Math.round(rect.top)));
        if (tops.size > 1) broken.push(match[0]);
      }
    }
  }
  return broken;
}"""


@pytest.mark.parametrize("width", [390, 1280])
def test_no_word_in_a_demo_article_table_breaks(browser, live_server, width):
    context = browser.new_context(
        base_url=live_server.url, viewport={"width": width, "height": 900}
    )
    page = context.new_page()
    page.goto("/")
    slugs = page.eval_on_selector_all(
        "#results .card-title a", "(links) => links.map((a) => a.getAttribute('href'))"
    )
    assert len(slugs) == 8
    found, cells = {}, 0
    for href in slugs:
        page.goto(href)
        cells += page.locator(".prose td").count()
        broken = page.evaluate(BROKEN_WORDS)
        if broken:
            found[href] = broken[:10]
        # A table too wide for the screen scrolls in its own box; the page never does.
        assert page.evaluate("document.documentElement.scrollWidth - window.innerWidth") <= 0
    context.close()
    assert cells > 50  # the demo articles do have tables to check
    assert not found, found
