"""Whatever comes in, the answer is a 2xx or a 4xx, nothing else changes, and the XML parses.

Property tests (Hypothesis) for the API's JSON, the importer's front matter, the search query
builder and the feed. Each property builds its app once per test function and keeps the examples
independent of one another (a rejected draft creates nothing; a search writes nothing), which is
why the function-scoped fixture health check is turned off.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

import pytest
from flask import render_template
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from blog import frontmatter
from blog.extensions import db
from blog.importer import import_paths
from blog.models import Article
from blog.search import find_articles, parse_filters
from blog.templating import xml_text

from .conftest import AUTHOR

# No example database on disk (.hypothesis/), no timing deadline on a shared CI machine.
PROPERTY = settings(
    max_examples=60,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

# What XML 1.0 cannot hold, not even as a character reference.
NOT_XML = (
    [chr(n) for n in range(0x00, 0x09)]
    + ["\x0b", "\x0c"]
    + [chr(n) for n in range(0x0E, 0x20)]
    + ["\ufffe", "\uffff", "\ud800", "\udfff"]
)
HOSTILE = "Bell\x07 form\x0c feed\x0b nul\x00 esc\x1b \ufffe\uffff end"


# -- the feed and the sitemap ----------------------------------------------------------------


def test_xml_text_drops_what_xml_cannot_hold_and_keeps_the_rest():
    assert xml_text("".join(NOT_XML)) == ""
    kept = "tab\there\nnew line\r é ✓ 😀 \x7f \x85 \ufffd"
    assert xml_text(kept) == kept
    assert xml_text(None) == ""


def test_the_feed_and_sitemap_parse_with_control_characters_everywhere(app, client, make_article):
    make_article(
        f"Title {HOSTILE}",
        f"Body {HOSTILE}\n\n```\ncode {HOSTILE}\n```\n",
        summary=f"Summary {HOSTILE}",
        category=f"Cat {HOSTILE}",
        tags=[f"Tag {HOSTILE}"],
    )
    feed = client.get("/feed.xml")
    assert feed.status_code == 200
    root = ET.fromstring(feed.data)  # raises on any character XML forbids
    atom = "{http://www.w3.org/2005/Atom}"
    titles = [entry.findtext(f"{atom}title") for entry in root.iter(f"{atom}entry")]
    assert "Title Bell form feed nul esc  end" in titles
    text = feed.get_data(as_text=True)
    assert not any(char in text for char in NOT_XML)
    sitemap = client.get("/sitemap.xml")
    assert sitemap.status_code == 200
    ET.fromstring(sitemap.data)


@PROPERTY
@given(title=st.text(min_size=1, max_size=40), summary=st.text(max_size=40))
def test_any_published_text_gives_a_feed_that_parses(app, make_article, title, summary):
    if not title.strip():
        return  # a title is required; the editor says so before anything is published
    article_id = make_article(title, f"Body {title}", summary=summary, tags=[title[:20]])
    # The feed of this one article: earlier examples' articles must not decide this one.
    with app.test_request_context("/feed.xml"):
        article = db.session.get(Article, article_id)
        feed = render_template("public/feed.xml", articles=[article], updated=article.updated_at)
    entry = ET.fromstring(feed.encode()).find("{http://www.w3.org/2005/Atom}entry")
    assert entry is not None
    # An XML parser reads any line break as \n.
    expected = xml_text(title.strip()).replace("\r\n", "\n").replace("\r", "\n")
    assert entry.findtext("{http://www.w3.org/2005/Atom}title") == expected


# -- the drafts API --------------------------------------------------------------------------

API_ANSWERS = {201, 400, 413, 415, 422}
# Any text, lone surrogates included: JSON escapes them, and SQLite cannot store them.
ANY_TEXT = st.text(st.characters(exclude_categories=()), max_size=30)
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | ANY_TEXT,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(ANY_TEXT, children, max_size=4)
    ),
    max_leaves=12,
)
FIELDS = ["title", "summary", "category", "tags", "body_markdown", "ai_model", "prompt"]
GOOD = {
    "title": "A draft",
    "summary": "S.",
    "category": "Backend",
    "tags": ["x"],
    "body_markdown": "Text.",
}
# Draft-shaped objects, so the examples reach the field checks and the database, not only the
# check of the body's shape: any subset of the fields, or a good draft with one field replaced.
DRAFT_LIKE = st.dictionaries(
    st.sampled_from(FIELDS), JSON_VALUES | ANY_TEXT, max_size=7
) | st.builds(
    lambda field, value: {**GOOD, field: value},
    st.sampled_from(FIELDS),
    ANY_TEXT | st.lists(ANY_TEXT, max_size=3) | JSON_VALUES,
)


@pytest.fixture
def api(app, runner):  # noqa: ANN001, ANN201
    """A client and its token's Authorization header."""
    secret = runner.invoke(args=["token", "create", AUTHOR]).stdout.strip()
    return app.test_client(), {"Authorization": f"Bearer {secret}"}


def articles(app) -> int:  # noqa: ANN001
    with app.app_context():
        return db.session.query(Article).count()


def check_answer(app, response, before: int) -> None:  # noqa: ANN001
    """A 2xx or 4xx in the API's shape; only a 201 creates anything, and exactly one draft."""
    assert response.status_code in API_ANSWERS, response.get_data(as_text=True)[:300]
    if response.status_code == 201:
        assert articles(app) == before + 1
    else:
        assert isinstance(response.json["errors"], list) and response.json["error"]
        assert articles(app) == before


@PROPERTY
@given(body=JSON_VALUES | DRAFT_LIKE)
@example({**GOOD, "title": "\ud800"})
def test_any_json_is_a_draft_or_a_4xx(app, api, body):
    client, auth = api
    before = articles(app)
    raw = json.dumps(body)  # NaN and Infinity included, as Python writes them
    response = client.post(
        "/api/drafts", data=raw, headers={**auth, "Content-Type": "application/json"}
    )
    check_answer(app, response, before)


@PROPERTY
@given(raw=st.binary(max_size=300), content_type=st.sampled_from(["application/json", "text/x"]))
def test_any_bytes_are_a_draft_or_a_4xx(app, api, raw, content_type):
    client, auth = api
    before = articles(app)
    response = client.post("/api/drafts", data=raw, headers={**auth, "Content-Type": content_type})
    check_answer(app, response, before)


# -- front matter and the importer -----------------------------------------------------------

KEYS = [
    "title",
    "date",
    "tags",
    "categories",
    "category",
    "summary",
    "draft",
    "slug",
    "ai_generated",
    "ai_model",
    "author",
    "published",
    "description",
]
HOSTILE_VALUES = [
    "&a [*a]",
    "&m {x: *m}",
    "0001-01-01T00:00:00+01:00",
    "9999-12-31T23:59:59-01:00",
    "2025-02-30",
    "0000-01-01",
    "1" * 40,
    "[[[[]]]]",
    "{",
    "*undefined",
    "!!python/object:os.system",
    "!!binary aGk=",
    "~",
    "[1, {a: b}]",
    "'unterminated",
    "|\n  block",
    "? [a]\n  : b",
    "-1e999",
    "true",
    "2025-04-20 09:30:00 +0200",
    ".nan",
    "<<: *x",
]
VALUES = st.sampled_from(HOSTILE_VALUES) | st.text(max_size=20)
YAML_ISH = st.lists(st.tuples(st.sampled_from(KEYS) | st.text(max_size=8), VALUES), max_size=6).map(
    lambda pairs: "---\n" + "".join(f"{key}: {value}\n" for key, value in pairs) + "---\n"
)
TOML_ISH = st.lists(st.tuples(st.sampled_from(KEYS), VALUES), max_size=6).map(
    lambda pairs: "+++\n" + "".join(f"{key} = {value}\n" for key, value in pairs) + "+++\n"
)
FILES = st.tuples(YAML_ISH | TOML_ISH | st.text(max_size=60), st.text(max_size=60)).map("".join)


@PROPERTY
@given(text=FILES | st.text())
@example("---\ntitle: x\ndate: 2025-02-30\n---\nBody")
@example("---\ntitle: x\ntags: " + "[" * 3000 + "\n---\nBody")
@example("---\ntitle: x\nsummary: \x01\n---\nBody")
def test_front_matter_is_a_document_or_its_error(text):
    try:
        document = frontmatter.parse(text)
    except frontmatter.FrontMatterError as error:
        assert error.message and (error.line is None or error.line >= 1)
    else:
        assert isinstance(document.meta, dict) and document.body_line >= 1


@PROPERTY
@given(text=FILES)
@example("---\ntitle: Loop\ntags: &a [*a]\n---\nBody")
@example("---\ntitle: Old\ndate: 0001-01-01T00:00:00+01:00\n---\nBody")
def test_any_file_is_imported_or_reported_alone(app, tmp_path, text):
    path = tmp_path / "post.md"
    path.write_text(text, encoding="utf-8")
    before = articles(app)
    with app.app_context():
        report = import_paths([path])
    entries = report.created + report.updated + report.skipped
    assert len({e.path for e in entries} | {e.path for e in report.errors}) == 1
    assert not (entries and report.errors)  # one outcome for the one file
    for failure in report.errors:
        assert str(failure).startswith(f"{path}")
        assert "unexpected error" not in failure.message  # a known problem, named as such
    assert articles(app) == before + len(report.created)


# -- search ----------------------------------------------------------------------------------

# FTS5's own syntax, and the words that have tripped other search boxes.
SEARCH_WORDS = st.sampled_from(
    [
        '"',
        "'",
        "-",
        ".",
        "::",
        "NEAR(",
        "(",
        ")",
        "*",
        "^",
        "NOT",
        "AND",
        "OR",
        ":",
        "+",
        "{",
        "}",
        "title:",
        "a-b",
        "c++",
        "\x00",
        "é",
        "😀",
        "ﬁ",
    ]
)
QUERIES = st.lists(SEARCH_WORDS | st.text(max_size=8), max_size=8).map(" ".join) | st.text()


@PROPERTY
@given(q=QUERIES)
def test_any_query_is_searched_without_a_database_error_and_a_200(app, q):
    # find_articles lets database errors through (a syntax error would fail here), on both
    # backends: FTS5 on SQLite, the tsquery built from lexemes on PostgreSQL.
    with app.app_context():
        results = find_articles(parse_filters({"q": q}))
        assert results.total >= 0
    response = app.test_client().get("/", query_string={"q": q})
    assert response.status_code == 200
