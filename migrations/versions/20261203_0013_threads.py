"""Threads: a post's later parts as replies (deliveries with a part number), thread alerts

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-03 16:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_OLD_STATES = (
    "'scheduled', 'publishing', 'published', 'unknown', 'failed', 'missed', 'needs_review',"
    " 'cancelled'"
)
_NEW_STATES = "'waiting', " + _OLD_STATES


def upgrade() -> None:
    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.add_column(sa.Column("part", sa.Integer(), server_default="0", nullable=False))
        batch_op.add_column(sa.Column("text", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("reply_ref", sa.String(length=200), nullable=True))
        batch_op.drop_constraint(op.f("uq_deliveries_post_id_channel_id"), type_="unique")
        batch_op.create_unique_constraint(
            op.f("uq_deliveries_post_id_channel_id_part"), ["post_id", "channel_id", "part"]
        )
        batch_op.drop_constraint(op.f("ck_deliveries_status_known"), type_="check")
        batch_op.create_check_constraint(
            op.f("ck_deliveries_status_known"), f"status in ({_NEW_STATES})"
        )
    with op.batch_alter_table("alert_rules", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_alert_rules_mode_known"), type_="check")
        batch_op.create_check_constraint(
            op.f("ck_alert_rules_mode_known"), "mode in ('single', 'digest', 'thread')"
        )
    with op.batch_alter_table("vacancy_alerts", schema=None) as batch_op:
        batch_op.add_column(sa.Column("part", sa.Integer(), nullable=True))


def downgrade() -> None:
    # Threads do not survive a downgrade: their later parts are removed, thread rules become
    # digests.
    op.execute("DELETE FROM deliveries WHERE part > 0")
    op.execute("UPDATE deliveries SET status = 'scheduled' WHERE status = 'waiting'")
    op.execute("UPDATE alert_rules SET mode = 'digest' WHERE mode = 'thread'")
    with op.batch_alter_table("vacancy_alerts", schema=None) as batch_op:
        batch_op.drop_column("part")
    with op.batch_alter_table("alert_rules", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_alert_rules_mode_known"), type_="check")
        batch_op.create_check_constraint(
            op.f("ck_alert_rules_mode_known"), "mode in ('single', 'digest')"
        )
    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_deliveries_status_known"), type_="check")
        batch_op.create_check_constraint(
            op.f("ck_deliveries_status_known"), f"status in ({_OLD_STATES})"
        )
        batch_op.drop_constraint(op.f("uq_deliveries_post_id_channel_id_part"), type_="unique")
        batch_op.create_unique_constraint(
            op.f("uq_deliveries_post_id_channel_id"), ["post_id", "channel_id"]
        )
        batch_op.drop_column("reply_ref")
        batch_op.drop_column("text")
        batch_op.drop_column("part")
