"""The one clock: every "now" in the blog comes from `clock.now()`.

Call it through the module (`from . import clock` … `clock.now()`), never import `now` by value,
so that a test fixing the time (the `clock` fixture) patches this one place for every module:
publishing, visibility, decisions, sign-ins and the search filters then agree on what time it is.
"""

from __future__ import annotations

from datetime import UTC, datetime


def now() -> datetime:
    """Return the current time as an aware UTC datetime."""
    return datetime.now(UTC)
