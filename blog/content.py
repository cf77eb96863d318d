"""Markdown to safe HTML, in one place: the public page, the preview and the review page all use it.

Markdown comes from AI models and authors, so it is untrusted. Raw HTML is off in the parser,
markdown-it's link validation stays on (no javascript:, vbscript:, file: or most data: links), the
highlighter escapes everything it is handed, generated heading ids carry a prefix so content
cannot clobber the page's own ids, and the final HTML passes through nh3 with an allow-list.
"""

from __future__ import annotations

import html
import math
import re
import threading
import time
import unicodedata
from dataclasses import dataclass, field
from functools import lru_cache
from urllib.parse import unquote

import nh3
from markdown_it import MarkdownIt
from markdown_it.rules_block import StateBlock
from markdown_it.rules_block import table as gfm_table
from markdown_it.rules_core import StateCore
from markdown_it.token import Token
from mdit_py_plugins.footnote import footnote_plugin
from pygments import format as pygments_format
from pygments import highlight as pygments_highlight
from pygments.formatters import HtmlFormatter
from pygments.lexer import Lexer
from pygments.lexers import get_lexer_by_name
from pygments.util import ClassNotFound

WORDS_PER_MINUTE = 200
# The longest body accepted (studio and API): markdown-it-py costs ~10-40 µs of CPU per character
# on the worst inputs (runs of "[" or "![", thousands of headings), so this keeps one render
# around a second. See tests/test_cost.py and `make bench BENCH_ARGS=--worst`.
MAX_BODY_CHARS = 50_000
# A table holds at most this many cells (rows x columns, its header included); the rows past it
# stay as text and Draft.problems refuses the body. GFM fills every short row up to the header's
# width, so 2.4 kB of "|a|a|..." over lines of "a" made 65,536 cells (markdown-it's own cap):
# 660 kB of HTML and over a second of parsing. A real table in an article is a few hundred.
MAX_TABLE_CELLS = 5_000
# And a body's tables at most this many in all: 124 tables of 5,000 cells fit in 50,000
# characters, 13 s of parsing and 6.4 MB of HTML. The tables past it stay as text too.
MAX_BODY_TABLE_CELLS = 10_000
TABLE_CUT = "table_cut"  # the parse's env key that says which limit cut a table (table_cut())
TABLE_CELLS = "table_cells"  # and the one that counts the cells of the tables so far
HEADING_ID_PREFIX = "sec-"
TOC_MIN_HEADINGS = 4
HEADING_LEVELS = (2, 4)  # the levels that get an id and a permalink

_LANG_NAME = re.compile(r"[\w+#.-]+")
_SLUG_STRIP = re.compile(r"[^a-z0-9]+")
_ALLOWED_ID = re.compile(r"^(sec-[a-z0-9-]+|fn\d+|fnref\d+(:\d+)?)$")

_TAGS = {
    "a", "abbr", "b", "blockquote", "br", "code", "del", "div", "em", "h2", "h3", "h4", "h5",
    "h6", "hr", "i", "input", "kbd", "label", "li", "mark", "ol", "p", "pre", "s", "section",
    "span", "strong", "sub", "sup", "table", "tbody", "td", "th", "thead", "tr", "ul",
    "img", "figure", "figcaption",
}  # fmt: skip
_ATTRIBUTES = {
    "*": {"class", "id"},
    "a": {"href", "title"},
    "abbr": {"title"},
    "img": {"src", "alt", "title", "width", "height", "srcset", "sizes", "loading", "decoding"},
    "input": {"type", "checked", "disabled"},
    "ol": {"start"},
    "pre": {"data-lang", "tabindex"},
    "td": {"style"},
    "th": {"style"},
}
_ALIGN_STYLE = re.compile(r"^text-align:(left|right|center)$")
# Images: only this site's own media (the CSP allows img-src 'self' and nothing else), by path.
MEDIA_PATH = re.compile(
    r"^/media/(?P<hash>[0-9a-f]{64})(-[1-9][0-9]{0,4})?\.(jpg|png|webp|gif|avif)$"
)
MAX_IMAGE_LOOKUPS = 200  # distinct images of one body given their size and srcset
IMAGE_SIZES = "(min-width: 50rem) 46rem, 100vw"  # the article column (.main-article, 48rem)
_SRCSET_ITEM = re.compile(r"^(?P<url>\S+) [1-9][0-9]{0,4}w$")
_IMAGE_ATTRIBUTES = {
    "loading": {"lazy", "eager"},
    "decoding": {"async"},
    "sizes": {IMAGE_SIZES},
}


def slugify(text: str) -> str:
    """Turn a title or name into a URL slug: ASCII, lower case, words joined by hyphens."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return _SLUG_STRIP.sub("-", ascii_text.lower()).strip("-")[:190].rstrip("-")


# Symbols that carry a term's meaning where slugify would drop them: C++, C#, F#, Notepad++.
_TERM_SYMBOLS = re.compile(r"\+|(?<=\w)#")
_TERM_WORDS = {"+": " plus ", "#": " sharp "}
TERM_SLUG_MAX = 80  # the slug columns of categories and tags
_NOT_WORD = re.compile(r"[\W_]+")


def term_slug(name: str) -> str:
    """Slug a category or tag name so that names meaning different things never share one.

    Categories and tags are found by slug, so that "Machine learning" and "machine-learning"
    are one. slugify drops whatever is not an ASCII letter or digit, which made "C++", "C#" and
    "C" one category (shown as whichever was approved first) and a name in Chinese none at all.
    Here + and a # after a letter are spelled out ("c-plus-plus", "c-sharp"), and a name with
    letters that have no ASCII form keeps its own letters ("数据库", "python-数据").

    Cached: a blog has a few hundred names, and an import slugs each file's names two or three
    times (split_tags, then the names it stores). Names are slugged before their length is
    checked, so a longer one (refused anyway) is not kept: a form field can be megabytes.
    """
    if len(name) > CACHED_NAME_MAX:
        return _term_slug(name)
    return _cached_term_slug(name)


def _term_slug(name: str) -> str:
    spelled = _TERM_SYMBOLS.sub(lambda match: _TERM_WORDS[match.group(0)], name)
    decomposed = unicodedata.normalize("NFKD", spelled)
    if not any(char.isalnum() and not char.isascii() for char in decomposed):
        return slugify(spelled)[:TERM_SLUG_MAX].rstrip("-")
    text = unicodedata.normalize("NFKC", spelled).casefold()
    return _NOT_WORD.sub("-", text).strip("-")[:TERM_SLUG_MAX].rstrip("-")


CACHED_NAME_MAX = 2 * TERM_SLUG_MAX  # a category or tag name may have 80 characters
_cached_term_slug = lru_cache(maxsize=4096)(_term_slug)


# A hash names an image of ours (blog.media: the file's SHA-256, in every address of it).
_HASH = re.compile(r"[0-9a-f]{64}")


def image_hashes(markdown: str) -> list[str]:
    """Return the image hashes a text may show, sorted: every hash in a text that links /media/.

    Markdown reads character references in an address (`&#x61;` is `a`, `&sol;` is `/`) and
    backslash escapes (`\\/` is `/`), and a browser decodes what is percent-encoded (`%61`)
    before it asks, so the text is read with all three decoded and the backslashes dropped. Any
    hash in such a text counts, not only one right after /media/: keeping an image a page
    merely mentions is cheaper than breaking one it shows or links to.
    """
    text = html.unescape(markdown) if "&" in markdown else markdown
    text = text.replace("\\", "")
    text = unquote(text) if "%" in text else text
    return sorted(set(_HASH.findall(text))) if "/media/" in text else []


def reading_minutes(markdown: str) -> int:
    """Estimate the reading time of a Markdown body in whole minutes (200 words a minute).

    A word is a run of anything but whitespace; str.split finds them four times faster than a
    regular expression, which an import of thousands of files notices.
    """
    return max(1, math.ceil(len(markdown.split()) / WORDS_PER_MINUTE))


_FORMATTER = HtmlFormatter(nowrap=True)


# The languages a fence is highlighted in, by Pygments lexer name (any alias of one works:
# py, js, sh, c++…); any other is shown as plain code, its name kept. A lexer is a set of
# regular expressions, and some backtrack without end on a few dozen characters: Scala's took
# 40 s on a fence holding `"` and 40 backslashes, and a worker was killed at 60 s. These were
# checked against such text (tests/test_cost.py runs the check on each).
HIGHLIGHTED = frozenset(
    {
        "Bash", "Bash Session", "C", "C#", "C++", "CSS", "Clojure", "Dart", "Diff", "Docker",
        "Django/Jinja", "Elixir", "Erlang", "F#", "GraphQL", "Go", "HTML", "Haskell", "INI",
        "JSON", "JSX", "Java", "JavaScript", "Julia", "Kotlin", "Lua", "Makefile", "Markdown",
        "Matlab", "MySQL", "Nginx configuration file", "Nix", "OCaml", "Objective-C", "PHP",
        "Perl", "PostgreSQL SQL dialect", "PowerShell", "Protocol Buffer", "Python",
        "Python console session", "Ruby", "Rust", "S", "SCSS", "SQL", "Swift", "TOML", "TSX",
        "TeX", "Terraform", "Text only", "TypeScript", "VimL", "XML", "YAML", "Zig", "sqlite3con",
    }
)  # fmt: skip


# Several listed lexers still take time that grows with the square of a hostile block's length
# (C++: ~1 s for 2,400 characters of one letter, blank lines, one letter). So a long block is
# highlighted HIGHLIGHT_PIECE characters at a time, cut at line ends, and a body is highlighted
# for HIGHLIGHT_SECONDS of CPU at most (render()): the rest is shown plain. Ordinary code takes
# a few milliseconds a piece, so only hostile text meets the limit; a construct that spans two
# pieces (a long comment) may be coloured as code in the second, never shown wrong otherwise.
HIGHLIGHT_PIECE = 1_000
HIGHLIGHT_SECONDS = 0.5
_highlighting = threading.local()  # `deadline`: the thread CPU time this render stops at


@lru_cache(maxsize=256)
def _lexer(name: str) -> Lexer | None:
    """Find a lexer by name once: the lookup scans every lexer (~0.5 ms a fence otherwise)."""
    try:
        lexer = get_lexer_by_name(name)
    except ClassNotFound:
        return None
    return lexer if lexer.name in HIGHLIGHTED else None


def _highlight(code: str, lang: str, _attrs: str) -> str:
    """Highlight a fenced block with Pygments, escaping the info string ourselves.

    markdown-it inserts what this returns as-is because it starts with <pre (markdown-it#1122).
    """
    code = code.replace("\b", "")  # never let a backspace hide in code meant for copy-paste
    match = _LANG_NAME.match(lang.strip())
    name = match.group(0) if match else ""
    lexer = _lexer(name) if name else None
    label = html.escape(name, quote=True)
    deadline = getattr(_highlighting, "deadline", None)
    if lexer is None or (deadline is not None and time.thread_time() > deadline):
        body = html.escape(code)
    elif len(code) <= HIGHLIGHT_PIECE:
        body = pygments_highlight(code, lexer, _FORMATTER)
    else:
        body = _highlight_in_pieces(code, type(lexer), deadline)
    lang_attr = f' data-lang="{label}"' if label else ""
    # tabindex: a code block that scrolls sideways must be reachable by keyboard.
    return f'<pre class="highlight" tabindex="0"{lang_attr}><code>{body}</code></pre>\n'


def _highlight_in_pieces(code: str, lexer_class: type[Lexer], deadline: float | None) -> str:
    """Highlight a long block HIGHLIGHT_PIECE characters at a time, plain once past `deadline`."""
    text = code.strip("\n") + "\n"  # what a lexer's stripnl and ensurenl do to a whole block
    lexer = _piece_lexer(lexer_class)
    out, start = [], 0
    while start < len(text):
        if deadline is not None and time.thread_time() > deadline:
            out.append(html.escape(text[start:]))
            break
        end = min(start + HIGHLIGHT_PIECE, len(text))
        line_end = text.rfind("\n", start, end)
        if end < len(text) and line_end > start:
            end = line_end + 1  # whole lines; a longer line is cut where the piece ends
        out.append(_highlight_piece(text[start:end], lexer))
        start = end
    return "".join(out)


def _highlight_piece(piece: str, lexer: Lexer) -> str:
    """Highlight one piece, or show it plain if the lexer's tokens do not spell it exactly.

    Lexers and the formatter are written for whole files: the formatter ends the last line with
    a newline, which a piece cut inside a long line must not gain.
    """
    tokens = list(lexer.get_tokens(piece))
    if "".join(value for _kind, value in tokens) != piece:
        return html.escape(piece)
    out = pygments_format(tokens, _FORMATTER)
    return out if piece.endswith("\n") or not out.endswith("\n") else out[:-1]


@lru_cache(maxsize=64)
def _piece_lexer(lexer_class: type[Lexer]) -> Lexer:
    """The lexer for pieces of a block: the newlines at a piece's ends are the block's own."""
    return lexer_class(stripnl=False, ensurenl=False)


def _heading_slug(text: str) -> str:
    return HEADING_ID_PREFIX + (slugify(text) or "section")


def _heading_anchors(state: StateCore) -> None:
    """Give h2-h4 unique prefixed ids and a permalink, in linear time.

    Does what mdit_py_plugins' anchors plugin did (same ids: `sec-x`, then `sec-x-1`, `sec-x-2`;
    same permalink markup), but its unique_slug() retried every suffix from 1 for each heading,
    so a body of 8,000 identical headings took seconds. Here each slug remembers the next suffix
    to try: the set of taken ids only grows, so the suffixes below it stay taken.
    """
    taken: set[str] = set()
    next_suffix: dict[str, int] = {}
    tokens = state.tokens
    for index, token in enumerate(tokens):
        if (
            token.type != "heading_open"
            or not HEADING_LEVELS[0] <= int(token.tag[1]) <= HEADING_LEVELS[1]
        ):
            continue
        children = tokens[index + 1].children or []
        title = "".join(
            child.content for child in children if child.type in ("text", "code_inline")
        )
        base = _heading_slug(title)
        slug, suffix = base, next_suffix.get(base, 0)
        if suffix:
            slug = f"{base}-{suffix}"
        while slug in taken:
            suffix += 1
            slug = f"{base}-{suffix}"
        next_suffix[base] = suffix + 1
        taken.add(slug)
        token.attrSet("id", slug)
        tokens[index + 2].meta["anchor"] = slug  # heading_close: _render_heading_close


def _render_heading_close(self, tokens: list[Token], index: int, options: dict, env: dict) -> str:  # noqa: ANN001 - a RendererHTML
    """Close a heading, after its permalink when _heading_anchors gave it an id.

    Written here rather than as four more tokens in the heading's inline children: making
    them was most of the anchors rule's cost, and the HTML is the same.
    """
    closing = self.renderToken(tokens, index, options, env)
    slug = tokens[index].meta.get("anchor")
    if slug is None:
        return closing
    return f' <a class="header-anchor" href="#{escape_text(slug)}">#</a>{closing}'


# GitHub's item openers: "[ ]" or "[x]" then whitespace. (The plugin this replaces took a tab or
# a line break there as an opener too, but then drew no checkbox and dropped the brackets.)
_TASK = re.compile(r"\[([ xX])\][ \t\n\v\f\r]+")
_BOXES = ("[ ]", "[x]", "[X]")
_CHECKBOX = '<input class="task-list-item-checkbox" {checked}disabled="disabled" type="checkbox">'


def universal_newlines(text: str) -> str:
    """Turn `\\r\\n` and a lone `\\r` into `\\n`, as Python's universal newlines read them.

    `in` finds no `\\r` at memchr's speed, where replace("\\r\\n") compares byte by byte, and
    most texts hold none.
    """
    return text.replace("\r\n", "\n").replace("\r", "\n") if "\r" in text else text


def _normalize(state: StateCore) -> None:
    """markdown-it's first rule without its regular expressions: the same text, far cheaper.

    Its `\\r\\n?|\\n` -> `\\n` rewrote every line ending of every body, `\\n` included: 60 µs
    of a 7 kB body, a tenth of parsing it. Most bodies hold neither a `\\r` nor a NUL.
    """
    text = universal_newlines(state.src)
    if "\0" in text:
        text = text.replace("\0", "\ufffd")
    state.src = text


def _task_lists(state: StateCore) -> None:
    """Make list items that open with `[ ]` or `[x]` disabled checkboxes, in linear time.

    Does what mdit_py_plugins' tasklists plugin did with label=True (same markup and classes),
    but it found each item's list by scanning back from the item, so a body of 6,000 task items
    took 2.5 s; here the open lists are kept on a stack as the tokens go by.
    """
    if not any(box in state.src for box in _BOXES):  # no item can open with one: most bodies
        return
    tokens = state.tokens
    lists: list[Token] = []
    for i, token in enumerate(tokens):
        if token.type in ("bullet_list_open", "ordered_list_open"):
            lists.append(token)
        elif token.type in ("bullet_list_close", "ordered_list_close"):
            lists.pop()
        elif (
            token.type == "inline"
            and i >= 2
            and tokens[i - 1].type == "paragraph_open"
            and tokens[i - 2].type == "list_item_open"
            and token.children
            and (opener := _TASK.match(token.content))
        ):
            checked = 'checked="checked" ' if opener[1] in "xX" else ""
            token.children[0].content = token.children[0].content[3:]
            token.content = token.content[3:]
            token.children[:0] = [
                _html_token("<label>"),
                _html_token(_CHECKBOX.format(checked=checked)),
            ]
            token.children.append(_html_token("</label>"))
            tokens[i - 2].attrSet("class", "task-list-item")
            if lists:
                lists[-1].attrSet("class", "contains-task-list")


def _html_token(markup: str) -> Token:
    token = Token("html_inline", "", 0)
    token.content = markup
    return token


def _figures(state: StateCore) -> None:
    """Turn a paragraph holding only an image into a <figure> with a caption.

    The caption is the image's title (`![alt](url "Caption")`) or an emphasised line right
    under it (`![alt](url)` then `*Caption*` on the next line).
    """
    if "![" not in state.src:  # no image anywhere: most bodies
        return
    tokens = state.tokens
    for index in range(len(tokens) - 2):
        opening = tokens[index]
        if opening.type != "paragraph_open" or opening.hidden:
            continue
        inline, closing = tokens[index + 1], tokens[index + 2]
        if closing.type != "paragraph_close" or "![" not in inline.content:
            continue
        children = [
            c for c in inline.children or [] if not (c.type == "text" and not c.content.strip())
        ]
        if not children or children[0].type != "image":
            continue
        image = children[0]
        if media_path(str(image.attrGet("src") or "")) is None:
            continue  # rendered as a link (see _render_image), not a picture
        if len(children) == 1:
            title = image.attrGet("title")
            caption = [Token("text", "", 0, content=str(title))] if title else []
        elif (
            len(children) >= 4
            and children[1].type in ("softbreak", "hardbreak")
            and children[2].type == "em_open"
            and children[-1].type == "em_close"
            and not any(c.type == "em_close" for c in children[3:-1])
        ):
            caption = children[3:-1]
        else:
            continue
        if caption and image.attrGet("title"):
            del image.attrs["title"]  # the caption says it; a tooltip would repeat it
        figure_open = Token("figure_open", "figure", 1, block=True, map=opening.map)
        figure_close = Token("figure_close", "figure", -1, block=True)
        tokens[index], tokens[index + 2] = figure_open, figure_close
        inline.children = [image]
        if caption:
            inline.children += [
                Token("html_inline", "", 0, content="<figcaption>"),
                *caption,
                Token("html_inline", "", 0, content="</figcaption>"),
            ]


def _bounded_table(state: StateBlock, start: int, end: int, silent: bool) -> bool:
    """GFM's table rule, stopped at the cell limits; says which one cut it in the parse's env.

    The rule reads rows until a blank line or another block: it is given an end that leaves
    room for as many rows as fit, in the table (MAX_TABLE_CELLS) and in the body's tables in all
    (MAX_BODY_TABLE_CELLS). A header wider than the room left is no table at all.
    """
    if silent or start + 1 >= end:  # asked only whether a table starts here
        return gfm_table(state, start, end, silent)
    below = state.bMarks[start + 1] + state.tShift[start + 1]
    if below >= state.eMarks[start + 1] or state.src[below] not in "|-:":
        return False  # gfm_table's own first test: every paragraph meets this rule
    delimiter = state.src[below : state.eMarks[start + 1]]
    columns = max(1, sum(1 for part in delimiter.split("|") if part.strip()))
    used = state.env.get(TABLE_CELLS, 0)
    room = min(MAX_TABLE_CELLS, MAX_BODY_TABLE_CELLS - used)
    cut = "one" if room == MAX_TABLE_CELLS else "in all"
    if columns > room:
        if gfm_table(state, start, start + 2, True):
            _note_cut(state, "one" if columns > MAX_TABLE_CELLS else cut)
        return False
    limit = start + 1 + room // columns  # the header's line and the rows'
    if not gfm_table(state, start, min(end, limit), silent):
        return False
    state.env[TABLE_CELLS] = used + columns * (state.line - start - 1)  # all but the delimiter
    if state.line == limit < end and _continues_table(state, limit, end):
        _note_cut(state, cut)
    return True


def _note_cut(state: StateBlock, cut: str) -> None:
    """Note which limit cut a table; "one" stays: splitting that table comes first."""
    if state.env.get(TABLE_CUT) != "one":
        state.env[TABLE_CUT] = cut


def _continues_table(state: StateBlock, line: int, end: int) -> bool:
    """Say whether the table rule would have read `line` as one more row (as it decides)."""
    if state.isEmpty(line) or state.sCount[line] < state.blkIndent or state.is_code_block(line):
        return False
    return not any(
        rule(state, line, end, True) for rule in state.md.block.ruler.getRules("blockquote")
    )


def table_cut(markdown: str) -> str | None:
    """Say which cell limit this body's tables pass (rendered cut): "one" table, "in all", None.

    "one" wins when both are passed: splitting that table is the first thing to do.
    """
    return parse(markdown)[1].get(TABLE_CUT)


def _media_dimensions(digest: str) -> tuple[int, int, list[int]] | None:
    """Look an uploaded image up by its hash: width, height and WebP widths (None: unknown)."""
    from multiprocessing import parent_process

    from flask import has_app_context

    # An importer's worker process may have inherited the app context, not a usable connection.
    if not has_app_context() or parent_process() is not None:
        return None
    from sqlalchemy import select

    from .extensions import db
    from .models import Media

    row = db.session.execute(
        select(Media.width, Media.height, Media.widths).where(Media.sha256 == digest)
    ).first()
    if row is None:
        return None
    return row.width, row.height, [int(w) for w in row.widths.split(",") if w]


def media_path(src: str) -> re.Match[str] | None:
    """Match an image URL that is one of ours (site-relative, or on SITE_URL's host)."""
    from urllib.parse import urlsplit

    from flask import current_app, has_app_context

    parts = urlsplit(src)
    if parts.scheme or parts.netloc:
        site = urlsplit(current_app.config.get("SITE_URL") or "") if has_app_context() else None
        if site is None or not site.netloc or parts.netloc != site.netloc:
            return None
    return MEDIA_PATH.match(parts.path) if not parts.query else None


def _render_image(self, tokens: list[Token], index: int, options: dict, env: dict) -> str:  # noqa: ANN001 - a RendererHTML
    """Write an image of ours with its size, srcset and lazy loading; any other as a link.

    Rendering happens when a text is saved or published, so the one lookup per image is cheap.
    The first image is likely above the fold: it loads at once, the others when scrolled to.
    """
    token = tokens[index]
    src = str(token.attrGet("src") or "")
    alt = self.renderInlineAsText(token.children or [], options, env)
    match = media_path(src)
    if match is None:
        # Another site's picture: the CSP (img-src 'self') would block it; offer the link.
        label = alt or src
        return f'<a href="{html.escape(src)}">{html.escape(label)}</a>'
    path = match.group(0)
    attrs = [f'src="{html.escape(path)}"', f'alt="{html.escape(alt)}"']
    # One lookup per distinct image, and a bound: a hostile body may hold thousands.
    sizes = env.setdefault("media_sizes", {})
    if match["hash"] not in sizes:
        lookup = len(sizes) < MAX_IMAGE_LOOKUPS
        sizes[match["hash"]] = _media_dimensions(match["hash"]) if lookup else None
    known = sizes[match["hash"]]
    if known is not None and path.rsplit(".", 1)[0] == f"/media/{match['hash']}":
        width, height, widths = known
        attrs += [f'width="{width}"', f'height="{height}"']
        if widths:
            srcset = ", ".join(f"/media/{match['hash']}-{w}.webp {w}w" for w in widths)
            attrs += [f'srcset="{srcset}"', f'sizes="{IMAGE_SIZES}"']
    first = not env.get("image_seen")
    env["image_seen"] = True
    attrs += ['loading="eager"' if first else 'loading="lazy"', 'decoding="async"']
    title = token.attrGet("title")
    if title:
        attrs.append(f'title="{html.escape(str(title))}"')
    return f"<img {' '.join(attrs)}>"


# markdown-it's escapeHtml, in its order ("&" first): the characters text must not hold raw.
_TEXT_ESCAPES = (("&", "&amp;"), ("<", "&lt;"), (">", "&gt;"), ('"', "&quot;"))


def escape_text(text: str) -> str:
    """Escape text exactly as markdown-it's escapeHtml does, replacing only what it holds.

    escapeHtml replaces all four characters in every text: str.replace counts a character
    byte by byte, where `in` looks for it with memchr, and most text holds none of them: this
    costs a third as much, on all the text of every body rendered.
    """
    for char, entity in _TEXT_ESCAPES:
        if char in text:
            text = text.replace(char, entity)
    return text


def _render_text(self, tokens: list[Token], index: int, options: dict, env: dict) -> str:  # noqa: ANN001 - a RendererHTML
    """markdown-it's own text rule, with escape_text."""
    return escape_text(tokens[index].content)


@lru_cache(maxsize=1)
def markdown_parser() -> MarkdownIt:
    """Build the one configured parser (cached: building it is not free)."""
    md = MarkdownIt("commonmark", {"html": False, "highlight": _highlight, "typographer": False})
    md.enable(["table", "strikethrough"])
    # With html off these rules only say no, once for every block and every `<`: left out.
    md.disable(["html_block", "html_inline"])
    md.block.ruler.at("table", _bounded_table, {"alt": ["paragraph", "reference"]})  # as GFM
    md.use(footnote_plugin)
    md.core.ruler.at("normalize", _normalize)
    md.core.ruler.after("inline", "task_lists", _task_lists)
    md.core.ruler.push("heading_anchors", _heading_anchors)
    md.core.ruler.push("figures", _figures)
    md.add_render_rule("image", _render_image)
    md.add_render_rule("text", _render_text)
    md.add_render_rule("heading_close", _render_heading_close)
    return md


def _attribute_filter(tag: str, name: str, value: str) -> str | None:
    """Keep only the ids and styles the renderer itself writes."""
    if name == "id":
        return value if _ALLOWED_ID.match(value) else None
    if name == "style":
        return value if _ALIGN_STYLE.match(value.replace(" ", "")) else None
    if tag == "input" and name == "type":
        return value if value == "checkbox" else None
    if name == "tabindex":
        return "0"
    if tag == "img":
        return _image_attribute(name, value)
    return value


def _image_attribute(name: str, value: str) -> str | None:
    """Keep an image's attributes only as the renderer writes them, pointing at our media."""
    if name == "src":
        return value if MEDIA_PATH.match(value) else None
    if name == "srcset":
        items = [item.strip() for item in value.split(",")]
        ok = all((m := _SRCSET_ITEM.match(item)) and MEDIA_PATH.match(m["url"]) for item in items)
        return value if ok else None
    if name in ("width", "height"):
        return value if value.isdigit() and len(value) <= 5 else None
    if name in _IMAGE_ATTRIBUTES:
        return value if value in _IMAGE_ATTRIBUTES[name] else None
    return value


# Built once: nh3.clean() turns the allow-lists into ammonia's own sets on every call, which
# was a third of sanitizing an article (0.19 ms against 0.13 ms for 900 words).
_CLEANER = nh3.Cleaner(
    tags=_TAGS,
    attributes=_ATTRIBUTES,
    attribute_filter=_attribute_filter,
    url_schemes={"http", "https", "mailto"},
    link_rel="noopener noreferrer nofollow",
)


def sanitize(fragment: str) -> str:
    """Pass rendered HTML through nh3 with our allow-list (hx-* and on* never survive)."""
    return _CLEANER.clean(fragment)


@dataclass
class Heading:
    level: int
    id: str
    text: str


@dataclass
class Rendered:
    html: str
    headings: list[Heading] = field(default_factory=list)
    minutes: int = 1

    @property
    def toc(self) -> list[Heading]:
        """Return the table of contents, or nothing for a short article."""
        return table_of_contents(self.headings)


def table_of_contents(headings: list[Heading]) -> list[Heading]:
    """Keep level 2 and 3 headings when there are enough sections to need a contents list."""
    level_two = [h for h in headings if h.level == 2]
    return [h for h in headings if h.level <= 3] if len(level_two) >= TOC_MIN_HEADINGS else []


@lru_cache(maxsize=8)
def parse(markdown: str) -> tuple[list[Token], dict]:
    """Parse a body once for all who need it: the page, its headings, the review checks.

    A page that renders a draft and checks it parsed the same body up to four times, and the
    worst bodies at the size limit take a second or two to parse. The tokens and env are shared
    between callers: read them, never change them.
    """
    env: dict = {}
    tokens = markdown_parser().parse(markdown, env)  # NULs become U+FFFD in _normalize
    return tokens, env


def body_images(markdown: str) -> list[Token]:
    """Return a body's image tokens in order, from the shared parse: read, never change them."""
    return [
        child
        for token in parse(markdown)[0]
        for child in token.children or []
        if child.type == "image"
    ]


def headings(markdown: str) -> list[Heading]:
    """Return a body's headings with their ids, parsing only (no highlighting, no HTML)."""
    return _headings(parse(markdown)[0])


def _headings(tokens: list[Token]) -> list[Heading]:
    found = []
    for i, token in enumerate(tokens):
        if token.type == "heading_open" and token.attrGet("id"):
            inline = tokens[i + 1]
            text = "".join(
                child.content
                for child in inline.children or []
                if child.type in {"text", "code_inline"}
            ).strip()
            found.append(Heading(int(token.tag[1]), str(token.attrGet("id")), text))
    return found


@lru_cache(maxsize=8)
def render(markdown: str) -> Rendered:
    """Render untrusted Markdown to sanitised HTML with its headings and reading time.

    Cached for the last few bodies (plain_text() and the review page render the same one again);
    the result is shared, so read it, never change it.
    """
    md = markdown_parser()
    tokens, env = parse(markdown)
    _highlighting.deadline = time.thread_time() + HIGHLIGHT_SECONDS
    try:
        raw = md.renderer.render(tokens, md.options, dict(env))
    finally:
        _highlighting.deadline = None
    return Rendered(sanitize(raw), _headings(tokens), reading_minutes(markdown))


def plain_text(markdown: str) -> str:
    """Return the words of a Markdown body without markup (for search and descriptions)."""
    rendered = render(markdown).html
    text = nh3.clean(rendered, tags=set())
    return re.sub(r"\s+", " ", html.unescape(text)).replace(" # ", " ").strip()


def excerpt(text: str, limit: int = 200) -> str:
    """Cut text at a word boundary to at most `limit` characters, with an ellipsis if cut."""
    text = re.sub(r"\s+", " ", text).strip()
    if len(text) <= limit:
        return text
    return text[:limit].rsplit(" ", 1)[0].rstrip(",.;:") + "…"


def pygments_css() -> str:
    """Return the highlight colours for light and dark themes."""
    light = HtmlFormatter(style="default").get_style_defs(".highlight")
    dark = HtmlFormatter(style="monokai").get_style_defs(".highlight")
    return f"{light}\n@media (prefers-color-scheme: dark) {{\n{dark}\n}}\n"
