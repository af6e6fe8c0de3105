"""Index the outbox by state, for digests and the depth and lag gauges.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_outbox_state_created_at", "outbox", ["state", "created_at"])


def downgrade() -> None:
    op.drop_index("ix_outbox_state_created_at", table_name="outbox")
