"""Numbers from query strings and URLs: whatever a visitor types is a page, a 404 or a default."""

from __future__ import annotations

import pytest

from blog.params import SQLITE_INT_MAX, BoundedIntConverter, bounded_int, clamped_int

from .conftest import AUTHOR

HUGE = "99999999999999999999999"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, 7),
        ("", 7),
        ("abc", 7),
        ("1.5", 7),
        ("1_0", 7),  # int() takes underscores; a URL should not
        ("\u0661\u0662", 7),  # int() takes Arabic-Indic digits; a URL should not
        (" 12 ", 12),
        ("+3", 3),
        ("1", 1),
        ("100", 100),
        ("0", None),
        ("-4", None),
        ("101", None),
        (HUGE, None),
        ("-" + HUGE, None),
        ("9" * 5000, None),  # past Python's int() digit limit: still out of range, not an error
    ],
)
def test_bounded_int_reads_a_number_or_says_it_is_out_of_range(value, expected):
    assert bounded_int(value, 7, 1, 100) == expected


@pytest.mark.parametrize(
    ("value", "expected"), [("0", 1), ("-4", 1), ("101", 100), (HUGE, 100), ("50", 50), ("x", 7)]
)
def test_clamped_int_brings_pages_into_range(value, expected):
    assert clamped_int(value, 7, 1, 100) == expected


def test_sqlite_limit_is_a_signed_64_bit_integer():
    assert SQLITE_INT_MAX == 2**63 - 1


def test_the_url_converter_stops_at_sqlites_limit():
    from flask import Flask

    app = Flask(__name__)
    app.url_map.converters["int"] = BoundedIntConverter
    app.add_url_rule("/n/<int:number>", "n", lambda number: str(number))
    client = app.test_client()
    assert client.get(f"/n/{SQLITE_INT_MAX}").get_data(as_text=True) == str(SQLITE_INT_MAX)
    assert client.get(f"/n/{SQLITE_INT_MAX + 1}").status_code == 404


@pytest.mark.parametrize("query", [f"b={HUGE}", f"a={HUGE}", f"a=1&b={HUGE}", "b=-1", "a=0&b=1"])
def test_a_revision_out_of_range_is_404(author_client, make_article, query):
    article_id = make_article("Numbers", author_email=AUTHOR)
    assert author_client.get(f"/studio/{article_id}/diff").status_code == 200
    assert author_client.get(f"/studio/{article_id}/diff?{query}").status_code == 404


@pytest.mark.parametrize("query", ["b=abc", "b=", "a=x&b=1"])
def test_a_revision_that_is_not_a_number_falls_back_to_the_default(
    author_client, make_article, query
):
    article_id = make_article("Numbers", author_email=AUTHOR)
    assert author_client.get(f"/studio/{article_id}/diff?{query}").status_code == 200


@pytest.mark.parametrize("page", [HUGE, "-" + HUGE, "0", "-3", "abc", "", "9" * 5000])
def test_an_audit_page_out_of_range_is_clamped(admin_client, page):
    response = admin_client.get(f"/review/audit?page={page}")
    assert response.status_code == 200


def test_search_page_out_of_range_is_clamped(ctx):
    from blog.search import MAX_PAGE, parse_filters

    assert parse_filters({"page": HUGE}).page == MAX_PAGE
    assert parse_filters({"page": "-" + HUGE}).page == 1
    assert parse_filters({"page": "1_0"}).page == 1
    assert parse_filters({"page": "3"}).page == 3


@pytest.mark.parametrize("article_id", [HUGE, str(SQLITE_INT_MAX + 1)])
def test_an_api_draft_id_out_of_range_is_404(app, runner, client, article_id):
    secret = runner.invoke(args=["token", "create", AUTHOR]).stdout.strip()
    response = client.get(
        f"/api/drafts/{article_id}", headers={"Authorization": f"Bearer {secret}"}
    )
    assert response.status_code == 404 and response.json["error"]


@pytest.mark.parametrize(
    "path",
    [
        "/studio/99999999999999999999999/edit",
        "/studio/99999999999999999999999/history",
        "/review/99999999999999999999999",
    ],
)
def test_every_integer_route_answers_404_past_the_database_range(admin_client, path):
    assert admin_client.get(path).status_code == 404
