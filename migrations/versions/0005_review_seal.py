"""review seal: revision digests and sealing, decision digests, AI share, take-downs

Existing revisions get their digest (the same canonical text blog.articles.source_text builds,
frozen here as it was when this migration was written), and every revision that was ever
submitted, decided on or published is sealed from the time of its first such event.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-30 12:20:00.000000

"""
import hashlib

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None

SEALING_ACTIONS = ("submit", "approve", "schedule", "request_changes", "reject")


def _source_text(title, summary, category, tags, body):
    header = (("Title", title), ("Summary", summary), ("Category", category), ("Tags", tags))
    lines = [f"{name}: {' '.join((value or '').split())}" for name, value in header]
    return "\n".join(lines) + "\n\n" + (body or "")


def upgrade():
    # Plain ADD COLUMN (no batch rebuild of tables that foreign keys point at), as in 0004.
    op.add_column('articles', sa.Column('ai_share', sa.Integer(), nullable=True))
    op.add_column('articles', sa.Column('taken_down_at', sa.DateTime(), nullable=True))
    op.add_column(
        'articles',
        sa.Column('taken_down_reason', sa.Text(), nullable=False, server_default=''),
    )
    op.add_column(
        'revisions', sa.Column('digest', sa.String(length=64), nullable=False, server_default='')
    )
    op.add_column('revisions', sa.Column('sealed_at', sa.DateTime(), nullable=True))
    op.add_column('revisions', sa.Column('check_flags', sa.Text(), nullable=True))
    op.add_column('review_events', sa.Column('digest', sa.String(length=64), nullable=True))

    connection = op.get_bind()
    rows = connection.execute(
        sa.text("SELECT id, title, summary, category_name, tags, body FROM revisions")
    ).all()
    for row in rows:
        digest = hashlib.sha256(_source_text(*row[1:]).encode()).hexdigest()
        connection.execute(
            sa.text("UPDATE revisions SET digest = :digest WHERE id = :id"),
            {"digest": digest, "id": row[0]},
        )
    actions = ", ".join(f"'{action}'" for action in SEALING_ACTIONS)
    op.execute(
        "UPDATE revisions SET sealed_at = ("
        f"SELECT min(created_at) FROM review_events WHERE revision_id = revisions.id"
        f" AND action IN ({actions})) "
        "WHERE sealed_at IS NULL"
    )
    op.execute(
        "UPDATE revisions SET sealed_at = created_at WHERE sealed_at IS NULL AND id IN "
        "(SELECT published_revision_id FROM articles WHERE published_revision_id IS NOT NULL)"
    )
    op.execute(
        "UPDATE review_events SET digest = "
        "(SELECT digest FROM revisions WHERE revisions.id = review_events.revision_id) "
        f"WHERE revision_id IS NOT NULL AND action IN ({actions})"
    )


def downgrade():
    with op.batch_alter_table('review_events', schema=None) as batch_op:
        batch_op.drop_column('digest')
    with op.batch_alter_table('revisions', schema=None) as batch_op:
        batch_op.drop_column('check_flags')
        batch_op.drop_column('sealed_at')
        batch_op.drop_column('digest')
    with op.batch_alter_table('articles', schema=None) as batch_op:
        batch_op.drop_column('taken_down_reason')
        batch_op.drop_column('taken_down_at')
        batch_op.drop_column('ai_share')
