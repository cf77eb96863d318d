"""media per uploader: one row per person's upload of a picture, sharing its files

The same picture uploaded by a second author handed them the first one's row: it was in
neither of their lists, and the first deleting it took it from under them. The row's picture
is unique per uploader now; its files, named by content, stay shared.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-03 00:30:00.000000

"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

# 0008 left the constraint unnamed: PostgreSQL named it media_sha256_key, SQLite not at all,
# and there batch mode finds it by this name, which the convention gives it when it reflects
# the table (the table is copied without it).
_UNNAMED = {"uq": "uq_%(table_name)s_%(column_0_name)s"}


def upgrade():
    if op.get_bind().dialect.name == "postgresql":
        op.drop_constraint("media_sha256_key", "media", type_="unique")
        op.create_unique_constraint(
            "uq_media_sha256_uploader", "media", ["sha256", "uploaded_by_id"]
        )
        return
    with op.batch_alter_table("media", naming_convention=_UNNAMED) as batch:
        batch.drop_constraint("uq_media_sha256", type_="unique")
        batch.create_unique_constraint("uq_media_sha256_uploader", ["sha256", "uploaded_by_id"])


def downgrade():
    # One row per picture again: the first upload keeps it, the others' rows go.
    op.execute(
        sa.text("DELETE FROM media WHERE id NOT IN (SELECT min(id) FROM media GROUP BY sha256)")
    )
    if op.get_bind().dialect.name == "postgresql":
        op.drop_constraint("uq_media_sha256_uploader", "media", type_="unique")
        op.create_unique_constraint("media_sha256_key", "media", ["sha256"])
        return
    with op.batch_alter_table("media") as batch:
        batch.drop_constraint("uq_media_sha256_uploader", type_="unique")
        batch.create_unique_constraint("uq_media_sha256", ["sha256"])
