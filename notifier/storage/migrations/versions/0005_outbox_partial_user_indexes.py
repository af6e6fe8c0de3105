"""Index a user's outbox rows only where they are read that way: desktop and held rows.

The index on ``(user, destination, id)`` covered every row, and every insert
paid for a write into it at a page of its own; the live stream reads only
desktop rows by user, and digests only held ones.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

DESKTOP = sa.text("destination = 'desktop'")
HELD = sa.text("state = 'held'")


def upgrade() -> None:
    op.create_index("ix_outbox_desktop_user_id", "outbox", ["user", "id"],
                    sqlite_where=DESKTOP, postgresql_where=DESKTOP)
    op.create_index("ix_outbox_held_user_destination_id", "outbox",
                    ["user", "destination", "id"], sqlite_where=HELD, postgresql_where=HELD)
    op.drop_index("ix_outbox_user_destination_id", table_name="outbox")


def downgrade() -> None:
    op.create_index("ix_outbox_user_destination_id", "outbox", ["user", "destination", "id"])
    op.drop_index("ix_outbox_held_user_destination_id", table_name="outbox")
    op.drop_index("ix_outbox_desktop_user_id", table_name="outbox")
