"""The delivery outbox, digest state, the change log and settings.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "outbox",
        sa.Column("id", BigId, nullable=False),
        sa.Column("user", sa.String(255), nullable=False),
        sa.Column("msg_id", sa.Text, nullable=False),
        sa.Column("destination", sa.String(32), nullable=False),
        sa.Column("state", sa.String(10), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("next_attempt", sa.Float, nullable=False),
        sa.Column("claimed_until", sa.Float, nullable=True),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("sent_at", sa.Float, nullable=True),
        sa.Column("last_error", sa.Text, nullable=True),
        sa.Column("notification", sa.JSON, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_outbox"),
        sa.UniqueConstraint("user", "msg_id", "destination",
                            name="uq_outbox_user_msg_id_destination"),
    )
    op.create_index("ix_outbox_destination_state_next_attempt", "outbox",
                    ["destination", "state", "next_attempt"])
    op.create_index("ix_outbox_user_destination_id", "outbox", ["user", "destination", "id"])
    op.create_table(
        "digest_state",
        sa.Column("user", sa.String(255), nullable=False),
        sa.Column("destination", sa.String(32), nullable=False),
        sa.Column("last_sent", sa.Float, nullable=False),
        sa.Column("last_window", sa.Integer, nullable=False),
        sa.PrimaryKeyConstraint("user", "destination", name="pk_digest_state"),
    )
    op.create_table(
        "changes",
        sa.Column("seq", BigId, nullable=False),
        sa.Column("kind", sa.String(8), nullable=False),
        sa.Column("op", sa.String(8), nullable=False),
        sa.Column("key1", sa.String(255), nullable=False),
        sa.Column("key2", sa.String(255), nullable=True),
        sa.Column("key3", sa.String(255), nullable=True),
        sa.Column("at", sa.Float, nullable=False),
        sa.PrimaryKeyConstraint("seq", name="pk_changes"),
    )
    op.create_table(
        "settings",
        sa.Column("key", sa.String(64), nullable=False),
        sa.Column("value", sa.Text, nullable=False),
        sa.PrimaryKeyConstraint("key", name="pk_settings"),
    )


def downgrade() -> None:
    op.drop_table("settings")
    op.drop_table("changes")
    op.drop_table("digest_state")
    op.drop_index("ix_outbox_user_destination_id", table_name="outbox")
    op.drop_index("ix_outbox_destination_state_next_attempt", table_name="outbox")
    op.drop_table("outbox")
