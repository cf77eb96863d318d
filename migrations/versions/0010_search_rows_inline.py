"""search rows inline on PostgreSQL: a tsvector is read from its own row, not from TOAST

PostgreSQL only. An article's `document` tsvector is ~4 KB, over the 2 KB past which PostgreSQL
moves a value out of line (tsvectors hardly compress, so it is stored out of line as it is).
Every `document @@ query` then reads it back through the TOAST table's index: the chip counts of
a broad search test ~10,000 rows that way, ~5 buffers each, 22-37 ms at 100,000 articles.
`toast_tuple_target = 8160` (the most a page allows) keeps rows up to a page inline: 14-20 ms
for those counts, at ~0.4 KiB an article more on disk (bench/README.md, "PostgreSQL"). The
option applies to rows written after it, so the existing rows are written again (a new tsvector
value, the same lexemes): ~20 s at 100,000 articles, and the old row versions wait for
autovacuum (`VACUUM FULL articles_fts` returns their space at once). SQLite's FTS5 needs nothing.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-01 02:40:00.000000

"""

from alembic import op


# revision identifiers, used by Alembic.
revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade():
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE articles_fts SET (toast_tuple_target = 8160)")
        # Concatenating an empty tsvector makes a new value, which is stored by the new rule;
        # an unchanged value would keep its pointer into the TOAST table.
        op.execute("UPDATE articles_fts SET document = document || ''::tsvector")


def downgrade():
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE articles_fts RESET (toast_tuple_target)")
