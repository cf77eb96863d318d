"""A database too busy to write answers 503 with Retry-After, never a 500."""

from __future__ import annotations

import sqlite3

import pytest

import blog.sqlite

from .conftest import AUTHOR, _make_app, login, sqlite_only
from .test_studio import editor_fields


@sqlite_only
def test_a_write_that_cannot_get_the_lock_is_a_503_to_retry(
    tmp_path, template_databases, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setattr(blog.sqlite, "BUSY_TIMEOUT_MS", 50)  # read when a connection opens
    app = _make_app(tmp_path, template_databases["demo"])
    client = app.test_client()
    login(client, AUTHOR)
    fields = editor_fields(client.get("/studio/1/edit"))
    fields["body"] += "\nMore.\n"

    holder = sqlite3.connect(tmp_path / "blog.sqlite3", isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # another process holds the write lock
    try:
        page = client.post("/studio/1/edit", data=fields)
        fragment = client.post("/studio/1/autosave", data=fields, headers={"HX-Request": "true"})
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    for response in (page, fragment):
        assert response.status_code == 503
        assert response.headers["Retry-After"] == "2"
        assert "busy" in response.get_data(as_text=True)
    # Nothing was lost: the same save goes through once the lock is free.
    assert client.post("/studio/1/edit", data=fields).status_code == 302
