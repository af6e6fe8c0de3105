"""Feed items of the RSS/Atom backend (notifier.storage.feeds).

Revision ID: 0002
Revises: 0001
Create Date: 2026-01-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

_big_id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "feed_items",
        sa.Column("id", _big_id, nullable=False),
        sa.Column("username", sa.String(255), nullable=False),
        sa.Column("msg_id", sa.Text(), nullable=False),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("content", sa.Text(), nullable=False),
        sa.Column("link", sa.Text(), nullable=True),
        sa.Column("topic", sa.Text(), nullable=False),
        sa.Column("app", sa.Text(), nullable=False),
        sa.Column("published", sa.Float(), nullable=False),
        sa.Column("stored_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_feed_items"),
        sa.UniqueConstraint("username", "msg_id", name="uq_feed_items_username_msg_id"),
    )
    op.create_index("ix_feed_items_username_id", "feed_items", ["username", "id"])


def downgrade() -> None:
    op.drop_index("ix_feed_items_username_id", table_name="feed_items")
    op.drop_table("feed_items")
