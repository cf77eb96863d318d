"""Whatever comes in, the answer is a 2xx or a 4xx, nothing else changes, and the XML parses.

Property tests (Hypothesis) for the API's JSON, the importer's front matter, the search query
builder and the feed. Each property builds its app once per test function and keeps the examples
independent of one another (a rejected draft creates nothing; a search writes nothing), which is
why the function-scoped fixture health check is turned off.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET

from flask import render_template
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from blog.extensions import db
from blog.models import Article
from blog.templating import xml_text

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
    assert entry.findtext("{http://www.w3.org/2005/Atom}title") == xml_text(title.strip())
