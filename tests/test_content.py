"""Markdown rendering: features, reading time, and untrusted input that must stay inert."""

from __future__ import annotations

import re

import pytest
from bs4 import BeautifulSoup
from hypothesis import given, settings
from hypothesis import strategies as st
from markdown_it.common.utils import escapeHtml

from blog.content import (
    MAX_BODY_TABLE_CELLS,
    MAX_TABLE_CELLS,
    escape_text,
    excerpt,
    headings,
    reading_minutes,
    render,
    sanitize,
    slugify,
    table_cut,
)

XSS = [
    "<script>alert(1)</script>",
    "<img src=x onerror=alert(1)>",
    "<svg onload=alert(1)>",
    '<a href="javascript:alert(1)">x</a>',
    "[x](javascript:alert(1))",
    "[x](JaVaScRiPt:alert(1))",
    "[x](  javascript:alert(1))",
    "[x](java\tscript:alert(1))",
    "[x](&#106;avascript:alert(1))",
    "[x](javascript&colon;alert(1))",
    "[x](%6Aavascript:alert(1))",
    "[x](vbscript:msgbox(1))",
    "[x](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==)",
    "[x](file:///etc/passwd)",
    "![x](javascript:alert(1))",
    "<javascript:alert(1)>",
    '[x](https://example.com "title\\" onmouseover=\\"alert(1)")',
    '```" onmouseover="alert(1)\nx\n```',
    "```<img src=x onerror=alert(1)>\nx\n```",
    '```python" class="x\nprint(1)\n```',
    "## <img src=x onerror=alert(1)>",
    '## x" onmouseover="alert(1)',
    '<div hx-get="/logout" hx-trigger="load">x</div>',
    "<iframe src=https://evil.example></iframe>",
    "<style>body{display:none}</style>",
    "<form action=https://evil.example><button>x</button></form>",
    "<meta http-equiv=refresh content='0;url=https://evil.example'>",
    "[x]: javascript:alert(1)\n\n[y][x]",
    "<details open ontoggle=alert(1)>",
    "`<script>alert(1)</script>`",
    "| a |\n|---|\n| <script>alert(1)</script> |",
    "Footnote[^1]\n\n[^1]: <img src=x onerror=alert(1)>",
]


def _dangerous(html: str) -> list[str]:
    """Return what a browser would run or load from this HTML."""
    soup = BeautifulSoup(html, "html.parser")
    found = []
    for tag in soup.find_all(True):
        if tag.name in {"script", "iframe", "style", "form", "meta", "img", "svg", "object"}:
            found.append(f"<{tag.name}>")
        for name, value in tag.attrs.items():
            if name.startswith(("on", "hx-", "data-hx")) or name in {"style", "srcdoc"}:
                if not (name == "style" and tag.name in {"td", "th"}):
                    found.append(f"{tag.name}[{name}]")
            if name in {"href", "src", "action"}:
                # A URL's scheme is a letter then letters, digits, + . - (browsers drop tabs).
                scheme = re.match(
                    r"^\s*([a-z][a-z0-9+.\-]*):", str(value).replace("\t", "").lower()
                )
                if scheme and scheme.group(1) not in {"http", "https", "mailto"}:
                    found.append(f"{tag.name}[{name}={value}]")
    return found


@pytest.mark.parametrize("markdown", XSS)
def test_untrusted_markdown_stays_inert(markdown):
    html = render(markdown).html
    assert _dangerous(html) == [], html


def test_sanitize_strips_htmx_and_handlers_even_from_html():
    html = sanitize('<p hx-get="/x" hx-trigger="load" onclick="x()" data-hx-post="/y">t</p>')
    assert html == "<p>t</p>"


def test_heading_ids_are_prefixed_and_unique():
    found = headings("## Results\n\n## Results\n\n### main\n")
    assert [h.id for h in found] == ["sec-results", "sec-results-1", "sec-main"]
    html = render("## main\n").html
    assert 'id="sec-main"' in html and 'href="#sec-main"' in html


def test_fence_info_is_escaped_and_highlighted():
    html = render('```python\nprint("hi")\n```\n').html
    soup = BeautifulSoup(html, "html.parser")
    assert soup.pre["data-lang"] == "python" and soup.select("pre span.nb")
    html = render('```"><script>\nx\n```\n').html
    assert "<script>" not in html and BeautifulSoup(html, "html.parser").pre


def test_backspace_is_removed_from_code():
    assert "\b" not in render("```\nrm -rf /tmp/x\b\b\b\b\b\n```\n").html


def test_commonmark_extensions():
    soup = BeautifulSoup(
        render(
            "| a | b |\n|---|--:|\n| 1 | 2 |\n\n- [x] done\n- [ ] todo\n\n"
            "Text[^n].\n\n[^n]: A note.\n\n~~gone~~\n"
        ).html,
        "html.parser",
    )
    assert soup.table and soup.select_one("td[style]")["style"] == "text-align:right"
    boxes = soup.select("input[type=checkbox]")
    assert len(boxes) == 2 and boxes[0].has_attr("checked") and boxes[0].has_attr("disabled")
    assert soup.select_one(".footnotes li#fn1") and soup.select_one("sup a[href='#fn1']")
    assert soup.s or soup.find("del")


def table(columns: int, rows: int, cell: str = "x") -> str:
    """A Markdown table of `columns` by `rows` cells, the header row included."""
    line = "|" + f"{cell}|" * columns + "\n"
    return line + "|" + "-|" * columns + "\n" + line * (rows - 1)


def test_a_table_up_to_the_cell_limit_is_whole():
    body = table(10, MAX_TABLE_CELLS // 10) + "\nAfter.\n"
    soup = BeautifulSoup(render(body).html, "html.parser")
    assert len(soup.select("th, td")) == MAX_TABLE_CELLS
    assert not table_cut(body)
    # A table that fills the limit and is ended by another block was not cut either.
    for after in ("## Next\n", "> quote\n", "```\ncode\n```\n", "- item\n", "    code\n"):
        assert not table_cut(table(10, MAX_TABLE_CELLS // 10) + after), after


def test_a_table_stops_at_the_cell_limit_and_its_other_rows_stay_as_text():
    # GFM fills every short row up to the header's width: these 2.4 kB of "|a|a|…" and "b"
    # lines were 65,536 cells (markdown-it's own cap), 660 kB of HTML and a second of parsing.
    body = "|" + "a|" * 400 + "\n|" + "-|" * 400 + "\n" + "b\n" * 400
    soup = BeautifulSoup(render(body).html, "html.parser")
    assert len(soup.select("th, td")) <= MAX_TABLE_CELLS
    assert soup.select("p")[-1].text.split() == ["b"] * (400 - MAX_TABLE_CELLS // 400 + 1)
    assert table_cut(body)
    # One cell past the limit is cut too; a header alone wider than the limit is no table.
    assert table_cut(table(10, MAX_TABLE_CELLS // 10 + 1))
    wide = table(MAX_TABLE_CELLS + 1, 1)
    assert table_cut(wide) and "<table" not in render(wide).html


def test_a_body_s_tables_stop_at_their_cell_limit_in_all():
    # 124 tables of 5,000 cells fit in 50,000 characters: 13 s to save and 6.4 MB of preview.
    small = "|" + "a|" * 50 + "\n|" + "-|" * 50 + "\n" + "b\n" * 99  # 5,000 cells, 450 chars
    assert not table_cut(small)
    whole = "\n".join([small] * (MAX_BODY_TABLE_CELLS // 5_000))
    assert not table_cut(whole)
    body = "\n".join([small] * 20)
    soup = BeautifulSoup(render(body).html, "html.parser")
    assert len(soup.select("th, td")) <= MAX_BODY_TABLE_CELLS
    assert len(soup.select("table")) == MAX_BODY_TABLE_CELLS // 5_000
    assert table_cut(body) == "in all" and table_cut(table(10, MAX_TABLE_CELLS // 10 + 1)) == "one"


def test_a_table_still_interrupts_a_paragraph():
    html = render("Intro line\n| a | b |\n|---|---|\n| 1 | 2 |\n").html
    assert "<p>Intro line</p>" in html and "<td>2</td>" in html


def test_task_lists_keep_their_markup_nested_and_after_any_whitespace():
    html = render("- [x] done\n  1. [ ] nested\n- plain\n- [ ]\tafter a tab\n").html
    soup = BeautifulSoup(html, "html.parser")
    assert [ul["class"] for ul in soup.select("ul, ol")] == [
        ["contains-task-list"],
        ["contains-task-list"],
    ]
    items = soup.select("li")
    assert [li.get("class") for li in items] == [
        ["task-list-item"],
        ["task-list-item"],
        None,
        ["task-list-item"],
    ]
    assert items[0].label.input["class"] == ["task-list-item-checkbox"]
    assert items[3].get_text() == "\tafter a tab" and items[3].input is not None
    assert "[ ]" not in html and "[x]" not in html


def test_raw_html_is_shown_as_text():
    html = render("Hello <b>world</b>").html
    assert "&lt;b&gt;world&lt;/b&gt;" in html


def test_nul_characters_do_not_break_rendering():
    assert "\x00" not in render("a\x00b").html


@pytest.mark.parametrize("ending", ["\r\n", "\r"])
def test_windows_and_old_mac_line_endings_read_as_newlines(ending):
    body = "# Title\n\nA paragraph\nwrapped.\n\n```\ncode\nhere\n```\n\n| a | b |\n| - | - |\n"
    assert render(body.replace("\n", ending)).html == render(body).html


def test_a_nul_character_shows_as_the_replacement_character():
    assert render("a\x00b `c\x00`").html == render("a\ufffdb `c\ufffd`").html


@settings(max_examples=300, deadline=None, database=None)
@given(st.text(alphabet=st.sampled_from("&<>\"'a é\n"), max_size=30) | st.text(max_size=30))
def test_text_is_escaped_as_markdown_it_escapes_it(text):
    assert escape_text(text) == escapeHtml(text)


def test_text_with_every_escaped_character_renders_inert():
    html = render('Tom & "Jerry" <b>bold</b> &amp; 3 > 2 < 4').html
    assert html == '<p>Tom &amp; "Jerry" &lt;b&gt;bold&lt;/b&gt; &amp; 3 &gt; 2 &lt; 4</p>\n'


@pytest.mark.parametrize(
    ("words", "minutes"), [(0, 1), (1, 1), (200, 1), (201, 2), (1600, 8), (2001, 11)]
)
def test_reading_time_is_words_at_200_a_minute_rounded_up(words, minutes):
    assert reading_minutes(" ".join(["word"] * words)) == minutes


def test_reading_time_counts_words_between_any_whitespace():
    # Lines, paragraphs, tabs, runs of spaces and no-break spaces all separate words.
    text = "one\ntwo\n\nthree\tfour  five\u00a0six " * 50  # 300 words
    assert reading_minutes(text) == 2
    assert reading_minutes("\n\n" + "word " * 200 + "\n\n") == 1


def test_table_of_contents_only_for_long_articles():
    short = render("## One\n\n## Two\n").toc
    long = render("## One\n\n### Sub\n\n## Two\n\n## Three\n\n## Four\n").toc
    assert short == []
    assert [h.text for h in long] == ["One", "Sub", "Two", "Three", "Four"]


@pytest.mark.parametrize(
    ("text", "slug"),
    [
        ("Hello, World!", "hello-world"),
        ("Node.js & NestJS", "node-js-nestjs"),
        ("Crème brûlée", "creme-brulee"),
        ("CI/CD", "ci-cd"),
        ("  ", ""),
        ("日本語", ""),
    ],
)
def test_slugify(text, slug):
    assert slugify(text) == slug


def test_term_slugs_are_cached_for_names_not_for_whatever_a_form_sends():
    """A tag's name is slugged before its length is checked: a 2 MB form field, or an import
    file's, must not be kept in the cache, or a few thousand of them would hold gigabytes."""
    from blog.content import TERM_SLUG_MAX, _cached_term_slug, term_slug

    _cached_term_slug.cache_clear()
    assert term_slug("C++") == term_slug("C++") == "c-plus-plus"
    assert _cached_term_slug.cache_info().hits == 1
    huge = "word " * 20_000
    assert term_slug(huge) == term_slug(huge) == ("word-" * 20)[:TERM_SLUG_MAX].rstrip("-")
    assert _cached_term_slug.cache_info().currsize == 1  # only "C++"


def test_excerpt_cuts_at_a_word():
    assert excerpt("one two three", 100) == "one two three"
    assert excerpt("alpha beta gamma delta", 12) == "alpha beta…"


def test_heading_ids_and_permalinks_match_the_anchors_plugin_they_replace():
    from markdown_it import MarkdownIt
    from mdit_py_plugins.anchors import anchors_plugin

    from blog.content import _heading_slug

    body = "".join(
        f"{'#' * level} {title}\n\n"
        for level, title in [
            (2, "Intro"), (3, "Intro"), (2, "Intro-1"), (4, "Intro"), (2, "`code` and *em*"),
            (5, "Deep"), (1, "Top"), (2, "Intro 1"), (3, "日本語"), (2, "日本語"), (2, "Intro"),
        ]
    )  # fmt: skip
    plugin = MarkdownIt("commonmark", {"html": False}).use(
        anchors_plugin, min_level=2, max_level=4, slug_func=_heading_slug, permalink=True,
        permalinkSymbol="#", permalinkSpace=True,
    )  # fmt: skip
    expected = BeautifulSoup(sanitize(plugin.render(body)), "html.parser")
    found = BeautifulSoup(render(body).html, "html.parser")
    assert [str(h) for h in found.select("h2, h3, h4, h5")] == [
        str(h) for h in expected.select("h2, h3, h4, h5")
    ]
    assert [h.id for h in headings(body)][-1] == "sec-intro-3"
