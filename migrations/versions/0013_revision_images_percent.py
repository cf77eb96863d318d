"""revision images named by a percent-encoded address (`/media/%61…`)

A browser decodes `%61` to `a` before it asks for an address, so a link written that way works,
and the image it names must count as used. 0012 filled each revision's image hashes without
decoding it; this adds the hashes such texts name. The rule is copied here as it is now
(blog.content.image_hashes): a migration must not change when the code does.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-02 11:00:00.000000

"""

import html
import re
from urllib.parse import unquote

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

_HASH = re.compile(r"[0-9a-f]{64}")
_CHUNK = 500  # revisions read at once: their bodies are held in memory together


def _image_hashes(markdown):
    text = html.unescape(markdown) if "&" in markdown else markdown
    text = text.replace("\\", "")
    text = unquote(text) if "%" in text else text
    return sorted(set(_HASH.findall(text))) if "/media/" in text else []


def upgrade():
    connection = op.get_bind()
    # Only a text with a % or a character reference (which may spell one) can be new here.
    may_name = sa.text(
        "SELECT id, body FROM revisions WHERE id > :after"
        " AND (body LIKE '%!%%' ESCAPE '!' OR body LIKE '%&%') ORDER BY id LIMIT :chunk"
    )
    known = sa.text(
        "SELECT revision_id, sha256 FROM revision_images WHERE revision_id IN :ids"
    ).bindparams(sa.bindparam("ids", expanding=True))
    after = 0
    while rows := connection.execute(may_name, {"after": after, "chunk": _CHUNK}).all():
        kept = set(connection.execute(known, {"ids": [row[0] for row in rows]}).all())
        names = [
            {"revision_id": revision_id, "sha256": digest}
            for revision_id, body in rows
            for digest in _image_hashes(body or "")
            if (revision_id, digest) not in kept
        ]
        if names:
            connection.execute(
                sa.text(
                    "INSERT INTO revision_images (revision_id, sha256)"
                    " VALUES (:revision_id, :sha256)"
                ),
                names,
            )
        after = rows[-1][0]


def downgrade():
    pass  # the rows added name images those texts do link to; 0012's downgrade drops them all
