"""search without a copy: FTS5 reads the sealed published revision; PostgreSQL gets tsvectors

SQLite: articles_fts becomes an FTS5 external-content index over `revisions` (rowid = revision
id), so it no longer stores a second copy of every article's text; articles_fts_entries says
which revision of which article is indexed. PostgreSQL: articles_fts holds a weighted tsvector
per published article (title A, tags B, summary C, body D) and the title-and-tags part alone,
each with a GIN index. Both are filled here from the published revisions.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-30 12:50:00.000000

"""
from alembic import op


# revision identifiers, used by Alembic.
revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None

SQLITE_TOKENIZE = "tokenize = 'porter unicode61 remove_diacritics 2', prefix = '2 3'"
# The text search configuration must be the same when indexing and querying (blog.search).
PG_CONFIG = "english"


def _pg_vector(column, weight):
    return f"setweight(to_tsvector('{PG_CONFIG}', coalesce({column}, '')), '{weight}')"


PG_HEAD = f"{_pg_vector('r.title', 'A')} || {_pg_vector('r.tags', 'B')}"
PG_DOCUMENT = (
    f"{PG_HEAD} || {_pg_vector('r.summary', 'C')} || {_pg_vector('r.body', 'D')}"
)


def upgrade():
    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        op.execute("DROP TABLE IF EXISTS articles_fts")
        op.execute(
            "CREATE TABLE articles_fts_entries ("
            "revision_id INTEGER PRIMARY KEY, article_id INTEGER NOT NULL UNIQUE)"
        )
        op.execute(
            "CREATE VIRTUAL TABLE articles_fts USING fts5(title, summary, tags, body, "
            f"content = 'revisions', content_rowid = 'id', {SQLITE_TOKENIZE})"
        )
        op.execute(
            "INSERT INTO articles_fts_entries (revision_id, article_id) "
            "SELECT published_revision_id, id FROM articles "
            "WHERE published_revision_id IS NOT NULL"
        )
        op.execute(
            "INSERT INTO articles_fts (rowid, title, summary, tags, body) "
            "SELECT r.id, r.title, r.summary, r.tags, r.body FROM revisions AS r "
            "JOIN articles_fts_entries AS e ON e.revision_id = r.id"
        )
    elif dialect == "postgresql":
        op.execute(
            "CREATE TABLE articles_fts ("
            "article_id integer PRIMARY KEY REFERENCES articles (id) ON DELETE CASCADE, "
            "head tsvector NOT NULL, document tsvector NOT NULL)"
        )
        op.execute("CREATE INDEX articles_fts_document ON articles_fts USING gin (document)")
        op.execute("CREATE INDEX articles_fts_head ON articles_fts USING gin (head)")
        op.execute(
            "INSERT INTO articles_fts (article_id, head, document) "
            f"SELECT a.id, {PG_HEAD}, {PG_DOCUMENT} FROM articles AS a "
            "JOIN revisions AS r ON r.id = a.published_revision_id"
        )


def downgrade():
    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        op.execute("DROP TABLE IF EXISTS articles_fts")
        op.execute("DROP TABLE IF EXISTS articles_fts_entries")
        op.execute(
            "CREATE VIRTUAL TABLE articles_fts USING fts5(title, summary, tags, body, "
            f"{SQLITE_TOKENIZE})"
        )
        # The old index held the body as plain text; Markdown is close (`flask rerender` redoes it).
        op.execute(
            "INSERT INTO articles_fts (rowid, title, summary, tags, body) "
            "SELECT a.id, r.title, r.summary, r.tags, r.body FROM articles AS a "
            "JOIN revisions AS r ON r.id = a.published_revision_id"
        )
    elif dialect == "postgresql":
        op.execute("DROP TABLE IF EXISTS articles_fts")
