"""Rejected bus messages, the newest ones, for 'notifier history rejected'.

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

_big_id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "rejected_messages",
        sa.Column("id", _big_id, nullable=False),
        sa.Column("at", sa.Float(), nullable=False),
        sa.Column("reason", sa.String(32), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.Column("msg_id", sa.Text(), nullable=True),
        sa.Column("topic", sa.Text(), nullable=True),
        sa.Column("payload", sa.LargeBinary(), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_rejected_messages"),
    )
    op.create_index("ix_rejected_messages_at", "rejected_messages", ["at"])


def downgrade() -> None:
    op.drop_index("ix_rejected_messages_at", table_name="rejected_messages")
    op.drop_table("rejected_messages")
