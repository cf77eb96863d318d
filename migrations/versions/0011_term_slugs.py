"""term slugs: categories and tags named "C++", "C#" or "数据库" get slugs of their own

Categories and tags are found by slug. The slugs dropped whatever was not an ASCII letter or
digit, so "C++", "C#" and "C" were one category (shown as the first approved spelling) and a
name in Chinese none at all. blog.content.term_slug now spells out + and a # after a letter
("c-plus-plus", "c-sharp") and keeps letters that have no ASCII form. This gives existing rows
the slug the code now looks them up by; a row whose new slug another row already has keeps
its own. Articles that shared a row under another name are set right by `flask rerender`,
which copies each published article's category and tags again from its approved revision.
The function is copied here as it was: a migration must not change when the code does.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-02 01:30:00.000000

"""

import re
import unicodedata

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

_SLUG_STRIP = re.compile(r"[^a-z0-9]+")
_TERM_SYMBOLS = re.compile(r"\+|(?<=\w)#")
_TERM_WORDS = {"+": " plus ", "#": " sharp "}
_NOT_WORD = re.compile(r"[\W_]+")
_MAX = 80


def _slugify(text):
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return _SLUG_STRIP.sub("-", ascii_text.lower()).strip("-")[:190].rstrip("-")


def _term_slug(name):
    spelled = _TERM_SYMBOLS.sub(lambda match: _TERM_WORDS[match.group(0)], name)
    decomposed = unicodedata.normalize("NFKD", spelled)
    if not any(char.isalnum() and not char.isascii() for char in decomposed):
        return _slugify(spelled)[:_MAX].rstrip("-")
    text = unicodedata.normalize("NFKC", spelled).casefold()
    return _NOT_WORD.sub("-", text).strip("-")[:_MAX].rstrip("-")


def _reslug(table, slug_of):
    connection = op.get_bind()
    rows = connection.execute(sa.text(f"SELECT id, slug, name FROM {table}")).all()
    taken = {slug for _id, slug, _name in rows}
    for row_id, slug, name in rows:
        wanted = slug_of(" ".join(name.split()))
        if wanted and wanted != slug and wanted not in taken:
            connection.execute(
                sa.text(f"UPDATE {table} SET slug = :slug WHERE id = :id"),
                {"slug": wanted, "id": row_id},
            )
            taken.discard(slug)
            taken.add(wanted)


def upgrade():
    for table in ("categories", "tags"):
        _reslug(table, _term_slug)


def downgrade():
    for table in ("categories", "tags"):
        _reslug(table, _slugify)
