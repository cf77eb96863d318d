"""axe-core on the signed-in pages: the studio, the editor, history and diffs, the review area."""

from __future__ import annotations

import pytest
from axe_playwright_python.sync_playwright import Axe

from ..conftest import ADMIN, PASSWORD

pytestmark = pytest.mark.browser

PAGES = [
    "/studio/",
    "/studio/new",
    "/studio/1/edit",
    "/studio/1/history",
    "/studio/1/diff?a=1&b=1",
    "/review/",
    "/review/1",
    "/review/users",
    "/review/tokens",
    "/review/audit",
]


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_signed_in_pages_have_no_accessibility_violations(page, scheme):
    page.emulate_media(color_scheme=scheme)
    page.goto("/login")
    page.get_by_label("E-mail").fill(ADMIN)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url("**/")
    found = []
    for path in PAGES:
        page.goto(path)
        for violation in Axe().run(page).response["violations"]:
            node = violation["nodes"][0]["html"][:120]
            found.append(f"{path} {violation['id']}: {violation['help']} (e.g. {node})")
    assert not found, "\n".join(found)
