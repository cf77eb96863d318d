"""media imported once: an import's pictures (no uploader) keep to one row per picture

The per-uploader unique key (0014) lets NULLs differ, so two imports storing the same picture at
once each added a row. A partial unique index covers the rows without an uploader; rows doubled
before it are merged into the first (nothing refers to a media row, and the files are shared).

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-03 07:00:00.000000

"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None

_IMPORTED = sa.text("uploaded_by_id IS NULL")


def upgrade():
    op.execute(
        sa.text(
            "DELETE FROM media WHERE uploaded_by_id IS NULL AND id NOT IN"
            " (SELECT min(id) FROM media WHERE uploaded_by_id IS NULL GROUP BY sha256)"
        )
    )
    op.create_index(
        "uq_media_sha256_imported",
        "media",
        ["sha256"],
        unique=True,
        sqlite_where=_IMPORTED,
        postgresql_where=_IMPORTED,
    )


def downgrade():
    op.drop_index("uq_media_sha256_imported", table_name="media")
