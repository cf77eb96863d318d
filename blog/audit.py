"""The audit log: one helper to write a line of it."""

from __future__ import annotations

from flask import has_request_context, request

from .extensions import db
from .models import AuditEntry, User


def record(action: str, actor: User | None, detail: str = "") -> AuditEntry:
    """Add an audit line to the session (the caller commits with its own change)."""
    entry = AuditEntry(
        action=action,
        actor_id=actor.id if actor is not None else None,
        detail=detail[:2000],
        remote_addr=(request.remote_addr or "")[:64] if has_request_context() else "cli",
    )
    db.session.add(entry)
    return entry
