"""Readable diffs between two texts: changed lines, with the changed words inside them marked.

Diffs are shown on pages that load on every visit (the public /changes page among them), and the
texts are untrusted and up to the body limit long, so the work is bounded. difflib's
SequenceMatcher is quadratic (and worse) on repetitive input, so it only ever sees small regions:
lines and words are first matched patience-style (common prefix and suffix, then the elements
that occur once on each side as anchors, recursing between them), and every step is charged to a
budget of element visits. Past the budget the rest is shown as whole changed lines and the diff
says it is approximate. Results are cached per pair of texts, so a page reloaded costs nothing.
"""

from __future__ import annotations

import difflib
import hashlib
import re
import threading
from bisect import bisect_left
from collections import Counter, OrderedDict
from collections.abc import Hashable, Sequence
from dataclasses import dataclass

from markupsafe import Markup, escape

CONTEXT_LINES = 3
# Element visits allowed for one diff (lines and words together), and again for its word counts:
# about 0.3 s of CPU at most on the bench machine; real edits use a small fraction of it.
WORK_BUDGET = 2_000_000
# Regions left without a unique anchor go to difflib only when this small (len(a) * len(b)).
SMALL_REGION = 2_500
# Rows shown at most: a diff longer than this is cut (the page would be megabytes of table).
MAX_ROWS = 5_000
# Diffs and word counts kept per process, by the SHA-256 of the two texts; weighed in characters.
CACHE_CHARS = 16_000_000
_TOKEN = re.compile(r"\s+|\w+|[^\w\s]")


@dataclass
class Row:
    """One line of a diff: kind is equal, delete, insert, skip (unchanged lines folded) or cut."""

    kind: str
    old_number: int | None
    new_number: int | None
    html: Markup
    skipped: int = 0


@dataclass
class Diff:
    """A diff as the templates show it; shared through the cache, so treat it as read-only."""

    rows: list[Row]
    added_words: int
    removed_words: int
    total_words: int
    # True when the work budget ran out: some changed lines are marked whole, not word by word,
    # and the word counts are an upper bound.
    approximate: bool = False

    @property
    def changed(self) -> bool:
        return any(row.kind in ("delete", "insert", "cut") for row in self.rows)

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


# -- bounded matching -------------------------------------------------------------------------


class _Budget:
    """Count the element visits left for one diff; remember whether any work was refused."""

    def __init__(self, units: int | None = None) -> None:
        self.left = WORK_BUDGET if units is None else units
        self.exhausted = False

    def spend(self, units: int) -> bool:
        """Take `units` from the budget, or refuse (and remember it) if they are not there."""
        if units > self.left:
            self.exhausted = True
            return False
        self.left -= units
        return True


def _longest_increasing(pairs: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Keep the longest run of (i, j) pairs, sorted by i, whose j also increase (patience sort)."""
    tails: list[int] = []
    tail_index: list[int] = []
    previous = [-1] * len(pairs)
    for k, (_i, j) in enumerate(pairs):
        pos = bisect_left(tails, j)
        if pos == len(tails):
            tails.append(j)
            tail_index.append(k)
        else:
            tails[pos] = j
            tail_index[pos] = k
        previous[k] = tail_index[pos - 1] if pos else -1
    chain = []
    k = tail_index[-1] if tail_index else -1
    while k >= 0:
        chain.append(pairs[k])
        k = previous[k]
    return chain[::-1]


def _unique_anchors(
    a: Sequence[Hashable], alo: int, ahi: int, b: Sequence[Hashable], blo: int, bhi: int
) -> list[tuple[int, int]]:
    """Pair the elements that occur exactly once on each side, keeping an in-order chain."""
    count_a = Counter(a[alo:ahi])
    count_b = Counter(b[blo:bhi])
    where_b = {b[j]: j for j in range(blo, bhi) if count_b[b[j]] == 1}
    pairs = [(i, where_b[a[i]]) for i in range(alo, ahi) if count_a[a[i]] == 1 and a[i] in where_b]
    return _longest_increasing(pairs)


def _matching_blocks(
    a: Sequence[Hashable], b: Sequence[Hashable], budget: _Budget
) -> list[tuple[int, int, int]]:
    """Return (i, j, size) runs equal in a and b, in order; unmatched where the budget ran out."""
    found: list[tuple[int, int, int]] = []
    regions = [(0, len(a), 0, len(b))]
    while regions:
        alo, ahi, blo, bhi = regions.pop()
        if not budget.spend(ahi - alo + bhi - blo):
            continue  # left unmatched: shown as changed
        start_a, start_b = alo, blo
        while alo < ahi and blo < bhi and a[alo] == b[blo]:
            alo += 1
            blo += 1
        if alo > start_a:
            found.append((start_a, start_b, alo - start_a))
        end_a = ahi
        while ahi > alo and bhi > blo and a[ahi - 1] == b[bhi - 1]:
            ahi -= 1
            bhi -= 1
        if ahi < end_a:
            found.append((ahi, bhi, end_a - ahi))
        n, m = ahi - alo, bhi - blo
        if not n or not m:
            continue
        if n * m <= SMALL_REGION:
            # Small enough for difflib's readable longest-run matching, whatever its worst case.
            if budget.spend(n * m):
                matcher = difflib.SequenceMatcher(None, a[alo:ahi], b[blo:bhi], autojunk=False)
                found.extend(
                    (alo + i, blo + j, k) for i, j, k in matcher.get_matching_blocks() if k
                )
            continue
        anchors = _unique_anchors(a, alo, ahi, b, blo, bhi)
        if not anchors:
            # Only repeated elements (blank lines, spaces, common words) and too many for difflib:
            # keep those that sit at the same offset, which catches paragraphs rewritten in place.
            found.extend(
                (alo + k, blo + k, 1) for k in range(min(n, m)) if a[alo + k] == b[blo + k]
            )
            continue
        prev_a, prev_b = alo, blo
        for i, j in anchors:
            regions.append((prev_a, i, prev_b, j))
            found.append((i, j, 1))
            prev_a, prev_b = i + 1, j + 1
        regions.append((prev_a, ahi, prev_b, bhi))
    found.sort()
    merged: list[tuple[int, int, int]] = []
    for i, j, k in found:
        if merged and merged[-1][0] + merged[-1][2] == i and merged[-1][1] + merged[-1][2] == j:
            merged[-1] = (merged[-1][0], merged[-1][1], merged[-1][2] + k)
        else:
            merged.append((i, j, k))
    return merged


def _opcodes(
    a: Sequence[Hashable], b: Sequence[Hashable], budget: _Budget
) -> list[tuple[str, int, int, int, int]]:
    """Describe how to turn a into b, as difflib's get_opcodes() does."""
    codes = []
    i = j = 0
    for ai, bj, size in [*_matching_blocks(a, b, budget), (len(a), len(b), 0)]:
        if i < ai and j < bj:
            codes.append(("replace", i, ai, j, bj))
        elif i < ai:
            codes.append(("delete", i, ai, j, bj))
        elif j < bj:
            codes.append(("insert", i, ai, j, bj))
        if size:
            codes.append(("equal", ai, ai + size, bj, bj + size))
        i, j = ai + size, bj + size
    return codes


# -- the per-process cache --------------------------------------------------------------------


class _Cache:
    """A small LRU by the texts' digests, bounded by the characters of the texts it stands for."""

    def __init__(self, max_chars: int) -> None:
        self.max_chars = max_chars
        self.chars = 0
        self.entries: OrderedDict[tuple, tuple[object, int]] = OrderedDict()
        self.lock = threading.Lock()

    def get(self, key: tuple) -> object | None:
        with self.lock:
            entry = self.entries.get(key)
            if entry is None:
                return None
            self.entries.move_to_end(key)
            return entry[0]

    def put(self, key: tuple, value: object, weight: int) -> None:
        with self.lock:
            if key in self.entries:
                return
            self.entries[key] = (value, weight)
            self.chars += weight
            while self.chars > self.max_chars and len(self.entries) > 1:
                _key, (_value, dropped) = self.entries.popitem(last=False)
                self.chars -= dropped


_DIFFS = _Cache(CACHE_CHARS)
_COUNTS = _Cache(CACHE_CHARS * 8)  # a count is three ints: keep many more of them


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def clear_cache() -> None:
    """Forget the cached diffs and word counts (for tests and the bench)."""
    for cache in (_DIFFS, _COUNTS):
        with cache.lock:
            cache.entries.clear()
            cache.chars = 0


# -- words ------------------------------------------------------------------------------------


def _words(text: str) -> list[str]:
    return _TOKEN.findall(text)


def _word_diff(old: str, new: str, budget: _Budget) -> tuple[Markup, Markup] | None:
    """Mark the words that differ between two lines with <del> and <ins> (None: over budget)."""
    if not budget.spend(len(old) // 4 + len(new) // 4):  # tokenising: about 4 chars a token
        return None
    a, b = _words(old), _words(new)
    old_html, new_html = [], []
    for op, i1, i2, j1, j2 in _opcodes(a, b, budget):
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


def _count_words(old: str, new: str) -> tuple[int, int, int, bool]:
    """Count words removed and added, the longer text's words, and whether the count is bounded."""
    key = (_digest(old), _digest(new))
    cached = _COUNTS.get(key)
    if cached is not None:
        return cached  # type: ignore[return-value]
    a, b = old.split(), new.split()
    budget = _Budget()
    added = removed = 0
    for op, i1, i2, j1, j2 in _opcodes(a, b, budget):
        if op in ("replace", "delete"):
            removed += i2 - i1
        if op in ("replace", "insert"):
            added += j2 - j1
    counted = (added, removed, max(len(a), len(b)), budget.exhausted)
    _COUNTS.put(key, counted, len(old) + len(new))
    return counted


def word_counts(old: str, new: str) -> tuple[int, int, int]:
    """Count words removed and added between two texts, and the longer text's word count.

    Words are whitespace-separated. Past the work budget, unmatched stretches count as wholly
    removed and added, so on huge rewrites the counts are an upper bound.
    """
    added, removed, total, _approximate = _count_words(old, new)
    return added, removed, total


# -- lines ------------------------------------------------------------------------------------


def diff_texts(old: str, new: str, context: int | None = CONTEXT_LINES) -> Diff:
    """Diff two texts line by line, marking words inside changed lines; fold long equal runs."""
    key = (_digest(old), _digest(new), context)
    cached = _DIFFS.get(key)
    if cached is None:
        cached = _diff_texts(old, new, context)
        _DIFFS.put(key, cached, len(old) + len(new))
    return cached  # type: ignore[return-value]


def _diff_texts(old: str, new: str, context: int | None) -> Diff:
    """Build the diff (uncached), within the work budget and the row limit."""
    a, b = old.splitlines(), new.splitlines()
    budget = _Budget()
    rows: list[Row] = []

    def cut(old_index: int, new_index: int) -> Diff:
        """Stop at MAX_ROWS, saying how many lines are left unshown."""
        rest = max(len(a) - old_index, len(b) - new_index)
        rows.append(Row("cut", None, None, Markup(""), skipped=rest))
        added, removed, total, counts_bounded = _count_words(old, new)
        return Diff(rows, added, removed, total, approximate=budget.exhausted or counts_bounded)

    for op, i1, i2, j1, j2 in _opcodes(a, b, budget):
        if op == "equal":
            rows.extend(_equal_rows(a, i1, i2, j1, context, first=not rows, last=i2 == len(a)))
            if len(rows) > MAX_ROWS:
                del rows[MAX_ROWS:]
                return cut(rows[-1].old_number or i1, rows[-1].new_number or j1)
            continue
        old_lines, new_lines = a[i1:i2], b[j1:j2]
        pairs = min(len(old_lines), len(new_lines)) if op == "replace" else 0
        for k in range(pairs):
            if len(rows) >= MAX_ROWS:
                return cut(i1 + k, j1 + k)
            marked = _word_diff(old_lines[k], new_lines[k], budget)
            if marked is None:
                pairs = k  # out of budget: the rest of this block is shown as whole lines
                break
            rows.append(Row("delete", i1 + k + 1, None, marked[0]))
            rows.append(Row("insert", None, j1 + k + 1, marked[1]))
        for k in range(pairs, len(old_lines)):
            if len(rows) >= MAX_ROWS:
                return cut(i1 + k, j1 + pairs)
            rows.append(
                Row("delete", i1 + k + 1, None, Markup("<del>{}</del>").format(old_lines[k]))
            )
        for k in range(pairs, len(new_lines)):
            if len(rows) >= MAX_ROWS:
                return cut(i2, j1 + k)
            rows.append(
                Row("insert", None, j1 + k + 1, Markup("<ins>{}</ins>").format(new_lines[k]))
            )
    added, removed, total, counts_bounded = _count_words(old, new)
    return Diff(rows, added, removed, total, approximate=budget.exhausted or counts_bounded)


def _equal_rows(
    lines: list[str], i1: int, i2: int, j1: int, context: int | None, *, first: bool, last: bool
) -> list[Row]:
    """Show unchanged lines near a change and fold the rest into one 'skip' row."""

    def row(i: int) -> Row:
        return Row("equal", i + 1, j1 + (i - i1) + 1, Markup(escape(lines[i])))

    count = i2 - i1
    if context is None:
        return [row(i) for i in range(i1, min(i2, i1 + MAX_ROWS + 1))]
    head = 0 if first else context
    tail = 0 if last else context
    if count <= head + tail + 1:
        return [row(i) for i in range(i1, i2)]
    shown = [row(i) for i in range(i1, i1 + head)]
    shown.append(Row("skip", None, None, Markup(""), skipped=count - head - tail))
    shown.extend(row(i) for i in range(i2 - tail, i2))
    return shown
