"""Web Push: which browsers took a notification that failed for another of the user's.

Revision ID: 0013
Revises: 0012
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

_big_id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "push_deliveries",
        sa.Column("subscription_id", _big_id, nullable=False),
        sa.Column("msg_id", sa.Text(), nullable=False),
        sa.Column("delivered_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("subscription_id", "msg_id", name="pk_push_deliveries"),
    )
    op.create_index("ix_push_deliveries_delivered_at", "push_deliveries", ["delivered_at"])


def downgrade() -> None:
    op.drop_index("ix_push_deliveries_delivered_at", table_name="push_deliveries")
    op.drop_table("push_deliveries")
