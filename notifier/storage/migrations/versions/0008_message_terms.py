"""The history's index for the rule preview and look-ups: message facts, terms, vocabulary.

Messages stored before this revision have no index rows: ``notifier history
reindex`` describes them and writes them (the rule preview describes them
itself until then).

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

#: the settings key of the newest message stored before the index existed
UNINDEXED_UPTO = "history_unindexed_upto"
_big_id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_term = sa.Text().with_variant(sa.Text(collation="C"), "postgresql")


def upgrade() -> None:
    op.create_table(
        "message_facts",
        sa.Column("message_id", _big_id, nullable=False, autoincrement=False),
        sa.Column("timestamp", sa.Float(), nullable=False),
        sa.Column("topic", sa.Text(), nullable=False),
        sa.Column("app", sa.Text(), nullable=False),
        sa.Column("severity", sa.String(8), nullable=False),
        sa.Column("agent", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("message_id", name="pk_message_facts"),
    )
    op.create_table(
        "message_terms",
        sa.Column("kind", sa.String(8), nullable=False),
        sa.Column("value", _term, nullable=False),
        sa.Column("timestamp", sa.Float(), nullable=False),
        sa.Column("message_id", _big_id, nullable=False),
        sa.PrimaryKeyConstraint("kind", "value", "timestamp", "message_id",
                                name="pk_message_terms"),
        sqlite_with_rowid=False,
    )
    op.create_index("ix_message_terms_message_id", "message_terms", ["message_id"])
    op.create_table(
        "history_terms",
        sa.Column("kind", sa.String(8), nullable=False),
        sa.Column("value", _term, nullable=False),
        sa.Column("last_seen", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("kind", "value", name="pk_history_terms"),
        sqlite_with_rowid=False,
    )
    # The messages stored so far are not indexed: remember up to where, for the preview.
    bind = op.get_bind()
    top = bind.execute(sa.text("SELECT max(id) FROM messages")).scalar()
    if top is not None:
        bind.execute(sa.text("INSERT INTO settings (key, value) VALUES (:key, :value)"),
                     {"key": UNINDEXED_UPTO, "value": str(top)})


def downgrade() -> None:
    op.get_bind().execute(sa.text("DELETE FROM settings WHERE key = :key"),
                          {"key": UNINDEXED_UPTO})
    op.drop_table("history_terms")
    op.drop_index("ix_message_terms_message_id", table_name="message_terms")
    op.drop_table("message_terms")
    op.drop_table("message_facts")
