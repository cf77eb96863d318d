"""Readable diffs between two texts: changed lines, with the changed words inside them marked."""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass

from markupsafe import Markup, escape

CONTEXT_LINES = 3
_TOKEN = re.compile(r"\s+|\w+|[^\w\s]")


@dataclass
class Row:
    """One line of a diff: kind is equal, delete, insert or skip (a run of unchanged lines)."""

    kind: str
    old_number: int | None
    new_number: int | None
    html: Markup
    skipped: int = 0


@dataclass
class Diff:
    rows: list[Row]
    added_words: int
    removed_words: int
    total_words: int

    @property
    def changed(self) -> bool:
        return any(row.kind in ("delete", "insert") for row in self.rows)

    @property
    def share_changed(self) -> float:
        """Return the share of words added or removed, against the longer text (0 to 1)."""
        if not self.total_words:
            return 0.0
        return min(1.0, max(self.added_words, self.removed_words) / self.total_words)


REVISION_FIELDS = (
    ("Title", "title"),
    ("Summary", "summary"),
    ("Category", "category_name"),
    ("Tags", "tags"),
)


def changed_fields(
    old: object, new: object, fields: tuple[tuple[str, str], ...] = REVISION_FIELDS
) -> list[tuple[str, str, str]]:
    """List (label, before, after) for each field that differs between two revisions."""
    return [
        (label, getattr(old, attr), getattr(new, attr))
        for label, attr in fields
        if getattr(old, attr) != getattr(new, attr)
    ]


def _words(text: str) -> list[str]:
    return _TOKEN.findall(text)


def _word_diff(old: str, new: str) -> tuple[Markup, Markup]:
    """Mark the words that differ between two lines with <del> and <ins>."""
    a, b = _words(old), _words(new)
    old_html, new_html = [], []
    for op, i1, i2, j1, j2 in difflib.SequenceMatcher(None, a, b, autojunk=False).get_opcodes():
        old_part = escape("".join(a[i1:i2]))
        new_part = escape("".join(b[j1:j2]))
        if op == "equal":
            old_html.append(old_part)
            new_html.append(new_part)
            continue
        if old_part:
            old_html.append(Markup("<del>{}</del>").format(old_part))
        if new_part:
            new_html.append(Markup("<ins>{}</ins>").format(new_part))
    return Markup("").join(old_html), Markup("").join(new_html)


def word_counts(old: str, new: str) -> tuple[int, int, int]:
    """Count words removed and added between two texts, and the longer text's word count."""
    a, b = old.split(), new.split()
    added = removed = 0
    for op, i1, i2, j1, j2 in difflib.SequenceMatcher(None, a, b, autojunk=False).get_opcodes():
        if op in ("replace", "delete"):
            removed += i2 - i1
        if op in ("replace", "insert"):
            added += j2 - j1
    return added, removed, max(len(a), len(b))


def diff_texts(old: str, new: str, context: int | None = CONTEXT_LINES) -> Diff:
    """Diff two texts line by line, marking words inside changed lines; fold long equal runs."""
    a, b = old.splitlines(), new.splitlines()
    rows: list[Row] = []
    matcher = difflib.SequenceMatcher(None, a, b, autojunk=False)
    for op, i1, i2, j1, j2 in matcher.get_opcodes():
        if op == "equal":
            rows.extend(_equal_rows(a, i1, i2, j1, context, first=not rows, last=i2 == len(a)))
            continue
        old_lines, new_lines = a[i1:i2], b[j1:j2]
        pairs = min(len(old_lines), len(new_lines)) if op == "replace" else 0
        for k in range(pairs):
            old_html, new_html = _word_diff(old_lines[k], new_lines[k])
            rows.append(Row("delete", i1 + k + 1, None, old_html))
            rows.append(Row("insert", None, j1 + k + 1, new_html))
        for k in range(pairs, len(old_lines)):
            rows.append(
                Row("delete", i1 + k + 1, None, Markup("<del>{}</del>").format(old_lines[k]))
            )
        for k in range(pairs, len(new_lines)):
            rows.append(
                Row("insert", None, j1 + k + 1, Markup("<ins>{}</ins>").format(new_lines[k]))
            )
    added, removed, total = word_counts(old, new)
    return Diff(rows, added, removed, total)


def _equal_rows(
    lines: list[str], i1: int, i2: int, j1: int, context: int | None, *, first: bool, last: bool
) -> list[Row]:
    """Show unchanged lines near a change and fold the rest into one 'skip' row."""

    def row(i: int) -> Row:
        return Row("equal", i + 1, j1 + (i - i1) + 1, Markup(escape(lines[i])))

    count = i2 - i1
    if context is None:
        return [row(i) for i in range(i1, i2)]
    head = 0 if first else context
    tail = 0 if last else context
    if count <= head + tail + 1:
        return [row(i) for i in range(i1, i2)]
    shown = [row(i) for i in range(i1, i1 + head)]
    shown.append(Row("skip", None, None, Markup(""), skipped=count - head - tail))
    shown.extend(row(i) for i in range(i2 - tail, i2))
    return shown
