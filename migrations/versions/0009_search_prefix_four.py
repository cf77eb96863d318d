"""search prefix index of four letters: "kube" and "quer" as cheap to find as "co"

SQLite only. FTS5 keeps ready-made postings for the prefix lengths named in `prefix`; any other
prefix makes it merge the postings of every term it begins, for every statement of a search
(the live search sends the word being typed as a prefix). 2 and 3 letters were indexed; 4 is
added, for ~1.9 KiB an article (bench/README.md, "Prefixes"). FTS5 cannot change `prefix` in
place, so the index is created again over the same revisions (external content) and refilled
from articles_fts_entries, which does not change. PostgreSQL needs nothing: its prefix match
reads the GIN index.

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-30 15:50:00.000000

"""
from alembic import op


# revision identifiers, used by Alembic.
revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None

TOKENIZE = "tokenize = 'porter unicode61 remove_diacritics 2'"


def _recreate(prefix):
    op.execute("DROP TABLE IF EXISTS articles_fts")
    op.execute(
        "CREATE VIRTUAL TABLE articles_fts USING fts5(title, summary, tags, body, "
        f"content = 'revisions', content_rowid = 'id', {TOKENIZE}, prefix = '{prefix}')"
    )
    op.execute(
        "INSERT INTO articles_fts (rowid, title, summary, tags, body) "
        "SELECT r.id, r.title, r.summary, r.tags, r.body FROM revisions AS r "
        "JOIN articles_fts_entries AS e ON e.revision_id = r.id"
    )


def upgrade():
    if op.get_bind().dialect.name == "sqlite":
        _recreate("2 3 4")


def downgrade():
    if op.get_bind().dialect.name == "sqlite":
        _recreate("2 3")
