"""Every page is well-formed HTML5 (no parse errors) with unique ids."""

from __future__ import annotations

from collections import Counter

import html5lib
import pytest

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
