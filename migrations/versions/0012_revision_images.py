"""revision images: each revision's image hashes, so where an image is used is a lookup

The media page and the delete check asked where each image is used by reading the text of
every article that could show one: seconds at tens of thousands of articles. Each revision now
has a row per image hash its text names, written with the text; this fills them for the
revisions already there. The rule is copied here as it was (blog.content.image_hashes): a
migration must not change when the code does.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-02 03:50:00.000000

"""

import html
import re

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

_HASH = re.compile(r"[0-9a-f]{64}")
_CHUNK = 500  # revisions read at once: their bodies are held in memory together


def _image_hashes(markdown):
    text = html.unescape(markdown) if "&" in markdown else markdown
    text = text.replace("\\", "")
    return sorted(set(_HASH.findall(text))) if "/media/" in text else []


def upgrade():
    op.create_table(
        "revision_images",
        sa.Column("revision_id", sa.Integer(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(["revision_id"], ["revisions.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("revision_id", "sha256"),
    )
    op.create_index(op.f("ix_revision_images_sha256"), "revision_images", ["sha256"], unique=False)
    connection = op.get_bind()
    # Only a text with "media" (its slashes may be escaped) or a character reference (which
    # may spell it) can name one.
    may_name = sa.text(
        "SELECT id, body FROM revisions WHERE id > :after"
        " AND (body LIKE '%media%' OR body LIKE '%&%') ORDER BY id LIMIT :chunk"
    )
    after = 0
    while rows := connection.execute(may_name, {"after": after, "chunk": _CHUNK}).all():
        names = [
            {"revision_id": revision_id, "sha256": digest}
            for revision_id, body in rows
            for digest in _image_hashes(body or "")
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
    op.drop_index(op.f("ix_revision_images_sha256"), table_name="revision_images")
    op.drop_table("revision_images")
