"""Whole numbers from query strings and URLs, checked before they reach the database.

`request.args.get("page", type=int)` takes 99999999999999999999999, which SQLite cannot bind
(OverflowError, a 500), and int() also takes "1_0" and non-ASCII digits. Every number a visitor
can type goes through one of the readers below: pages are clamped (clamped_int), and
identifiers out of range (bounded_int) are 404s.
"""

from __future__ import annotations

import re
from typing import Any

from werkzeug.routing import IntegerConverter, Map

SQLITE_INT_MAX = 2**63 - 1  # SQLite's INTEGER is a signed 64-bit number
MAX_PAGE = 100_000  # far past any real list, and (page - 1) * page size stays a small offset

_INTEGER = re.compile(r"[+-]?[0-9]+", re.ASCII)
_MAX_DIGITS = 30  # past this the number is out of any range; int() would refuse past 4,300


def _read(value: str | None, default: int, low: int, high: int) -> int:
    """Read a number as typed: default if absent or not a number, just past the range if huge."""
    text = (value or "").strip()
    if not _INTEGER.fullmatch(text):
        return default
    if len(text.lstrip("+-").lstrip("0")) > _MAX_DIGITS:
        return low - 1 if text.startswith("-") else high + 1
    return int(text)


def bounded_int(value: str | None, default: int, low: int, high: int) -> int | None:
    """Read an identifier: default if absent or not a number, None if outside [low, high]."""
    number = _read(value, default, low, high)
    return number if low <= number <= high else None


def clamped_int(value: str | None, default: int, low: int, high: int) -> int:
    """Read a page number: default if absent or not a number, else brought into [low, high]."""
    return min(max(_read(value, default, low, high), low), high)


class BoundedIntConverter(IntegerConverter):
    """Match `<int:...>` only within SQLite's range, so a larger id is a 404, not a 500."""

    def __init__(self, url_map: Map, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("max", SQLITE_INT_MAX)
        super().__init__(url_map, *args, **kwargs)
