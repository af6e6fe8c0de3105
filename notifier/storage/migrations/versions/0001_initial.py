"""Users, package ownership, rules, message history and the profile cache.

Revision ID: 0001
Revises:
Create Date: 2026-01-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

_big_id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "users",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("emails", sa.JSON(), nullable=False),
        sa.Column("ircnicks", sa.JSON(), nullable=False),
        sa.Column("groups", sa.JSON(), nullable=False),
        sa.Column("delivery", sa.JSON(none_as_null=True), nullable=True),
        sa.Column("feed_token", sa.String(64), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("updated_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_users"),
        sa.UniqueConstraint("name", name="uq_users_name"),
        sa.UniqueConstraint("feed_token", name="uq_users_feed_token"),
    )
    op.create_table(
        "owners",
        sa.Column("package", sa.String(255), nullable=False),
        sa.Column("kind", sa.String(8), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.PrimaryKeyConstraint("package", "kind", "name", name="pk_owners"),
        sa.CheckConstraint("kind IN ('user', 'group')", name="ck_owners_kind"),
    )
    op.create_index("ix_owners_kind_name", "owners", ["kind", "name"])
    op.create_table(
        "rules",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("username", sa.String(255), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("disabled", sa.Boolean(), nullable=False),
        sa.Column("document", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("updated_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_rules"),
        sa.UniqueConstraint("username", "name", name="uq_rules_username_name"),
    )
    op.create_table(
        "messages",
        sa.Column("id", _big_id, nullable=False),
        sa.Column("msg_id", sa.Text(), nullable=False),
        sa.Column("topic", sa.Text(), nullable=False),
        sa.Column("timestamp", sa.Float(), nullable=False),
        sa.Column("envelope", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_messages"),
        sa.UniqueConstraint("msg_id", name="uq_messages_msg_id"),
    )
    op.create_index("ix_messages_topic", "messages", ["topic"])
    op.create_index("ix_messages_timestamp", "messages", ["timestamp"])
    op.create_table(
        "profile_cache",
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("profile", sa.JSON(none_as_null=True), nullable=True),
        sa.Column("fetched_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_profile_cache"),
    )


def downgrade() -> None:
    op.drop_table("profile_cache")
    op.drop_index("ix_messages_timestamp", table_name="messages")
    op.drop_index("ix_messages_topic", table_name="messages")
    op.drop_table("messages")
    op.drop_table("rules")
    op.drop_index("ix_owners_kind_name", table_name="owners")
    op.drop_table("owners")
    op.drop_table("users")
