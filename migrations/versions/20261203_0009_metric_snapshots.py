"""Metric snapshots at fixed post ages, collection state, outbox entry figures

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-03 13:16:46
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import campaign.db

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "metric_channel_states",
        sa.Column("channel_id", sa.Integer(), nullable=False),
        sa.Column("next_collect_at", campaign.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("updated_at", campaign.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["channel_id"],
            ["channels.id"],
            name=op.f("fk_metric_channel_states_channel_id_channels"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("channel_id", name=op.f("pk_metric_channel_states")),
    )
    op.create_table(
        "outbox_entry_metrics",
        sa.Column("entry_id", sa.Integer(), nullable=False),
        sa.Column("hidden_at", campaign.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("updated_at", campaign.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("impressions", sa.Integer(), nullable=True),
        sa.Column("likes", sa.Integer(), nullable=True),
        sa.Column("reposts", sa.Integer(), nullable=True),
        sa.Column("replies", sa.Integer(), nullable=True),
        sa.Column("quotes", sa.Integer(), nullable=True),
        sa.Column("bookmarks", sa.Integer(), nullable=True),
        sa.Column("link_clicks", sa.Integer(), nullable=True),
        sa.Column("profile_clicks", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["entry_id"],
            ["outbox_entries.id"],
            name=op.f("fk_outbox_entry_metrics_entry_id_outbox_entries"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("entry_id", name=op.f("pk_outbox_entry_metrics")),
    )
    op.create_table(
        "metric_collection_states",
        sa.Column("delivery_id", sa.Integer(), nullable=False),
        sa.Column("next_collect_at", campaign.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("last_collected_at", campaign.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("not_found_at", campaign.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["delivery_id"],
            ["deliveries.id"],
            name=op.f("fk_metric_collection_states_delivery_id_deliveries"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("delivery_id", name=op.f("pk_metric_collection_states")),
    )
    with op.batch_alter_table("metric_collection_states", schema=None) as batch_op:
        batch_op.create_index(
            "ix_metric_collection_states_next_collect_at", ["next_collect_at"], unique=False
        )

    op.create_table(
        "metric_snapshots",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("delivery_id", sa.Integer(), nullable=False),
        sa.Column("window", sa.String(length=16), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("window_seconds", sa.Integer(), nullable=True),
        sa.Column("collected_at", campaign.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("age_seconds", sa.Integer(), nullable=False),
        sa.Column("impressions", sa.Integer(), nullable=True),
        sa.Column("likes", sa.Integer(), nullable=True),
        sa.Column("reposts", sa.Integer(), nullable=True),
        sa.Column("replies", sa.Integer(), nullable=True),
        sa.Column("quotes", sa.Integer(), nullable=True),
        sa.Column("bookmarks", sa.Integer(), nullable=True),
        sa.Column("link_clicks", sa.Integer(), nullable=True),
        sa.Column("profile_clicks", sa.Integer(), nullable=True),
        sa.CheckConstraint(
            "source in ('platform', 'manual', 'csv')", name=op.f("ck_metric_snapshots_source_known")
        ),
        sa.CheckConstraint("age_seconds >= 0", name=op.f("ck_metric_snapshots_age_not_negative")),
        sa.ForeignKeyConstraint(
            ["delivery_id"],
            ["deliveries.id"],
            name=op.f("fk_metric_snapshots_delivery_id_deliveries"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_metric_snapshots")),
        sa.UniqueConstraint(
            "delivery_id",
            "window",
            "source",
            name=op.f("uq_metric_snapshots_delivery_id_window_source"),
        ),
    )
    with op.batch_alter_table("metric_snapshots", schema=None) as batch_op:
        batch_op.create_index(
            "ix_metric_snapshots_delivery_id_age_seconds",
            ["delivery_id", "age_seconds"],
            unique=False,
        )


def downgrade() -> None:
    with op.batch_alter_table("metric_snapshots", schema=None) as batch_op:
        batch_op.drop_index("ix_metric_snapshots_delivery_id_age_seconds")

    op.drop_table("metric_snapshots")
    with op.batch_alter_table("metric_collection_states", schema=None) as batch_op:
        batch_op.drop_index("ix_metric_collection_states_next_collect_at")

    op.drop_table("metric_collection_states")
    op.drop_table("outbox_entry_metrics")
    op.drop_table("metric_channel_states")
