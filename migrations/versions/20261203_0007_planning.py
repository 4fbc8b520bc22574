"""Planning: queue slots, key dates, approval and campaign fields

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-03 09:38:46
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import campaign.db

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "key_dates",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("organisation_id", sa.Integer(), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("effect", sa.String(length=10), nullable=False),
        sa.Column("starts_on", sa.Date(), nullable=False),
        sa.Column("ends_on", sa.Date(), nullable=False),
        sa.Column("notes", sa.Text(), nullable=False),
        sa.Column("uid", sa.String(length=255), nullable=True),
        sa.Column("created_at", campaign.db.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "effect in ('none', 'boost', 'blackout')", name=op.f("ck_key_dates_effect_known")
        ),
        sa.CheckConstraint(
            "kind in ('term', 'exams', 'results', 'careers_fair', 'deadline', 'other')",
            name=op.f("ck_key_dates_kind_known"),
        ),
        sa.CheckConstraint("ends_on >= starts_on", name=op.f("ck_key_dates_ends_after_start")),
        sa.ForeignKeyConstraint(
            ["organisation_id"],
            ["organisations.id"],
            name=op.f("fk_key_dates_organisation_id_organisations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_key_dates")),
        sa.UniqueConstraint(
            "organisation_id", "uid", name=op.f("uq_key_dates_organisation_id_uid")
        ),
    )
    with op.batch_alter_table("key_dates", schema=None) as batch_op:
        batch_op.create_index(
            "ix_key_dates_org_starts_on", ["organisation_id", "starts_on"], unique=False
        )

    op.create_table(
        "queue_slots",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("channel_id", sa.Integer(), nullable=False),
        sa.Column("weekday", sa.Integer(), nullable=False),
        sa.Column("at", sa.Time(), nullable=False),
        sa.Column("created_at", campaign.db.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "weekday >= 0 AND weekday <= 6", name=op.f("ck_queue_slots_weekday_range")
        ),
        sa.ForeignKeyConstraint(
            ["channel_id"],
            ["channels.id"],
            name=op.f("fk_queue_slots_channel_id_channels"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_queue_slots")),
        sa.UniqueConstraint(
            "channel_id", "weekday", "at", name=op.f("uq_queue_slots_channel_id_weekday_at")
        ),
    )
    with op.batch_alter_table("campaigns", schema=None) as batch_op:
        batch_op.add_column(sa.Column("goal", sa.Text(), nullable=False, server_default=""))
        batch_op.add_column(sa.Column("audience", sa.String(length=40), nullable=True))
        batch_op.add_column(sa.Column("owner_id", sa.Integer(), nullable=True))
        batch_op.create_foreign_key(
            batch_op.f("fk_campaigns_owner_id_users"),
            "users",
            ["owner_id"],
            ["id"],
            ondelete="SET NULL",
        )

    with op.batch_alter_table("organisations", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("duplicate_window_hours", sa.Integer(), nullable=False, server_default="72")
        )

    with op.batch_alter_table("posts", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("updated_at", campaign.db.UTCDateTime(timezone=True), nullable=True)
        )
        batch_op.add_column(sa.Column("schedule_note", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("submitted_by_id", sa.Integer(), nullable=True))
        batch_op.add_column(
            sa.Column("submitted_at", campaign.db.UTCDateTime(timezone=True), nullable=True)
        )
        batch_op.add_column(sa.Column("reviewed_by_id", sa.Integer(), nullable=True))
        batch_op.add_column(
            sa.Column("reviewed_at", campaign.db.UTCDateTime(timezone=True), nullable=True)
        )
        batch_op.add_column(sa.Column("review_comment", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("blackout_override", sa.Text(), nullable=True))
        batch_op.create_foreign_key(
            batch_op.f("fk_posts_reviewed_by_id_users"),
            "users",
            ["reviewed_by_id"],
            ["id"],
            ondelete="SET NULL",
        )
        batch_op.create_foreign_key(
            batch_op.f("fk_posts_submitted_by_id_users"),
            "users",
            ["submitted_by_id"],
            ["id"],
            ondelete="SET NULL",
        )


def downgrade() -> None:
    with op.batch_alter_table("posts", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("fk_posts_submitted_by_id_users"), type_="foreignkey")
        batch_op.drop_constraint(batch_op.f("fk_posts_reviewed_by_id_users"), type_="foreignkey")
        batch_op.drop_column("blackout_override")
        batch_op.drop_column("review_comment")
        batch_op.drop_column("reviewed_at")
        batch_op.drop_column("reviewed_by_id")
        batch_op.drop_column("submitted_at")
        batch_op.drop_column("submitted_by_id")
        batch_op.drop_column("schedule_note")
        batch_op.drop_column("updated_at")

    with op.batch_alter_table("organisations", schema=None) as batch_op:
        batch_op.drop_column("duplicate_window_hours")

    with op.batch_alter_table("campaigns", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("fk_campaigns_owner_id_users"), type_="foreignkey")
        batch_op.drop_column("owner_id")
        batch_op.drop_column("audience")
        batch_op.drop_column("goal")

    op.drop_table("queue_slots")
    with op.batch_alter_table("key_dates", schema=None) as batch_op:
        batch_op.drop_index("ix_key_dates_org_starts_on")

    op.drop_table("key_dates")
