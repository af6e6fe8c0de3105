"""Each rule's sends per day, for the rules' "sent in the last 7 days" counts.

Filled from the inbox rows already stored, so that the counts are right at once.

Revision ID: 0012
Revises: 0011
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

_BACKFILL = {
    "sqlite": """
        INSERT INTO rule_sends ("user", rule, day, count)
        SELECT inbox."user", CAST(sent.value AS TEXT), CAST(inbox.created_at / 86400 AS INTEGER),
               count(*)
        FROM inbox, json_each(inbox.rules) AS sent
        WHERE sent.type = 'text'
        GROUP BY 1, 2, 3""",
    "postgresql": """
        INSERT INTO rule_sends ("user", rule, day, count)
        SELECT inbox."user", left(sent.value, 255), floor(inbox.created_at / 86400)::integer,
               count(*)
        FROM inbox CROSS JOIN LATERAL json_array_elements_text(
            CASE WHEN json_typeof(inbox.rules) = 'array' THEN inbox.rules ELSE '[]'::json END
        ) AS sent(value)
        GROUP BY 1, 2, 3""",
}


def upgrade() -> None:
    op.create_table(
        "rule_sends",
        sa.Column("user", sa.String(255), nullable=False),
        sa.Column("rule", sa.String(255), nullable=False),
        sa.Column("day", sa.Integer(), nullable=False, autoincrement=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("user", "day", "rule", name="pk_rule_sends"),
        sqlite_with_rowid=False,
    )
    backfill = _BACKFILL.get(op.get_bind().dialect.name)
    if backfill is not None:
        op.execute(backfill)


def downgrade() -> None:
    op.drop_table("rule_sends")
