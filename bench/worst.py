"""The worst inputs at the size limit: hostile Markdown bodies and pairs of texts to diff.

Shared by `make bench --worst` (which prints their real timings) and tests/test_cost.py (which
asserts a generous bound on them). Each builder fills the body limit, so the inputs follow the
limit if it changes. They were picked by timing every Markdown construct that makes many tokens
or makes the parser look ahead, and every shape of edit that is quadratic for difflib.
"""

from __future__ import annotations

import random
import statistics
import time
from collections.abc import Callable

from blog.content import MAX_BODY_CHARS

LIMIT = MAX_BODY_CHARS


def fill(unit: str, head: str = "", tail: str = "", limit: int | None = None) -> str:
    """Repeat `unit` between `head` and `tail` up to the limit."""
    limit = LIMIT if limit is None else limit
    return head + unit * ((limit - len(head) - len(tail)) // len(unit)) + tail


def _numbered(make: Callable[[int], str], limit: int | None = None) -> str:
    """Join make(0), make(1), ... while they fit in the limit."""
    limit = LIMIT if limit is None else limit
    parts, size, i = [], 0, 0
    while size + len(piece := make(i)) <= limit:
        parts.append(piece)
        size += len(piece)
        i += 1
    return "".join(parts)


def _footnotes() -> str:
    half = LIMIT // 2
    refs = _numbered(lambda i: f"x[^{i}]\n", half)
    count = refs.count("[^")
    notes = "".join(f"[^{i}]: n\n" for i in range(count))
    return (refs + "\n" + notes)[:LIMIT]


WORST_MARKDOWN: dict[str, Callable[[], str]] = {
    "identical headings": lambda: fill("## Same\n\n"),
    "open brackets": lambda: fill("["),
    "image brackets": lambda: fill("!["),
    "emphasis delimiters": lambda: fill("*_**__"),
    "intraword underscores": lambda: fill("a_"),
    "many links": lambda: fill("[a](/articles/x) "),
    "distinct links": lambda: _numbered(lambda i: f"[a](/articles/x{i}) "),
    "footnotes": _footnotes,
    "huge table": lambda: fill("| x | y |\n", head="| a | b |\n|---|---|\n"),
    # Each 2-character row is a row of 4 cells (3 filled in empty): the most cells per character.
    "table of short rows": lambda: fill("a\n", head="|a|a|a|a|\n|-|-|-|-|\n"),
    "wide table": lambda: (
        fill("a|", head="|", limit=LIMIT // 3)
        + "\n"
        + fill("-|", head="|", limit=LIMIT // 3)
        + "\n"
        + fill("b|", head="|", limit=LIMIT // 3 - 2)
    ),
    "nested lists": lambda: fill("- ", tail="x"),
    "task list": lambda: fill("- [ ] x\n"),
    "nested blockquotes": lambda: fill(">"),
    "one long line": lambda: fill("word "),
    "python fence": lambda: fill("def f(x):\n    return x + 1\n", "```python\n", "```\n"),
    "yaml fence": lambda: fill("key: [a, {b: c}]\n", "```yaml\n", "```\n"),
    "many small fences": lambda: fill("```python\nx = 1\n```\n"),
}


_VOCABULARY = "alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu".split()


def _lines(seed: int, count: int, words: int = 12) -> list[str]:
    """Make `count` lines of words from a tiny vocabulary (the worst case for matching words)."""
    rng = random.Random(seed)
    return [" ".join(rng.choice(_VOCABULARY) for _ in range(words)) for _ in range(count)]


def _changed_lines() -> tuple[str, str]:
    return "\n".join(_lines(1, 1000)) + "\n", "\n".join(_lines(2, 1000)) + "\n"


def _every_line_changed() -> tuple[str, str]:
    count = LIMIT // 80
    return "\n".join(_lines(3, count)) + "\n", "\n".join(_lines(4, count)) + "\n"


def _paragraphs_rewritten() -> tuple[str, str]:
    count = LIMIT // 82
    old, new = _lines(5, count), _lines(6, count)
    return "\n\n".join(old) + "\n", "\n\n".join(new) + "\n"


def _blank_line_after_each() -> tuple[str, str]:
    old = _numbered(lambda i: f"line {i} of text\n")
    return old, old.replace("\n", "\n\n")[:LIMIT]


def _long_line_edited() -> tuple[str, str]:
    old = fill("word ", limit=LIMIT - 10)
    middle = len(old) // 2
    return old, "start " + old[:middle] + "middle " + old[middle:] + "end"


def _lines_reversed() -> tuple[str, str]:
    lines = _numbered(lambda i: f"line {i}\n").splitlines(keepends=True)
    return "".join(lines), "".join(reversed(lines))


def _one_blank_line_each() -> tuple[str, str]:
    return fill("\n"), fill("\n", head="x")


WORST_DIFFS: dict[str, Callable[[], tuple[str, str]]] = {
    "1,000 changed lines": _changed_lines,
    "every line changed, few distinct words": _every_line_changed,
    "every paragraph rewritten": _paragraphs_rewritten,
    "blank line added after every line": _blank_line_after_each,
    "one long line edited": _long_line_edited,
    "lines reversed": _lines_reversed,
    "blank lines shifted": _one_blank_line_each,
}


# -- the bench phase --------------------------------------------------------------------------


def _normal_article() -> str:
    """Pick the generated corpus body closest to 900 words: the yardstick for the ratios."""
    from . import corpus

    bodies = [corpus.generate(article_id, 1_000).body for article_id in range(1, 60)]
    return min(bodies, key=lambda body: abs(len(body.split()) - 900))


def _cpu_median(work: Callable[[], object], repetitions: int) -> float:
    """Return the median CPU seconds of `work` over a few runs (after one warm-up)."""
    work()
    samples = []
    for _ in range(repetitions):
        started = time.process_time()
        work()
        samples.append(time.process_time() - started)
    return statistics.median(samples)


def measure_worst(repetitions: int = 3) -> list[str]:
    """Time every worst input (CPU, uncached) and tabulate it against a normal article."""
    from blog.content import parse, render
    from blog.diff import clear_cache, diff_texts

    def uncached_render(body: str) -> None:
        render.cache_clear()
        parse.cache_clear()
        render(body)

    normal = _normal_article()
    floor = _cpu_median(lambda: uncached_render(normal), max(repetitions, 10))
    rows: list[tuple[str, str, int, float]] = []
    for name, make in WORST_MARKDOWN.items():
        body = make()
        seconds = _cpu_median(lambda b=body: uncached_render(b), repetitions)
        rows.append(("render", name, len(body), seconds))

    def uncached_diff(old: str, new: str) -> None:
        clear_cache()
        diff_texts(old, new)

    for name, make in WORST_DIFFS.items():
        old, new = make()
        seconds = _cpu_median(lambda o=old, n=new: uncached_diff(o, n), repetitions)
        rows.append(("diff", name, max(len(old), len(new)), seconds))
    clear_cache()
    width = max(len(name) for _kind, name, _size, _seconds in rows)
    lines = [
        f"worst inputs at the body limit ({LIMIT:,} characters): CPU time, median of "
        f"{repetitions} after a warm-up; renders and diffs uncached",
        f"ratio: against rendering a normal article ({len(normal.split()):,} words, "
        f"{len(normal):,} characters): {floor * 1000:.1f} ms",
        "",
        f"{'what':<6}  {'input':<{width}}  {'chars':>7}  {'ms':>8}  {'ratio':>7}",
        "-" * (6 + width + 7 + 8 + 7 + 8),
    ]
    for kind, name, size, seconds in rows:
        lines.append(
            f"{kind:<6}  {name:<{width}}  {size:>7,}  {seconds * 1000:>8,.0f}  "
            f"x{seconds / floor:>6,.1f}"
        )
    return lines
