"""Tracked links: short codes, clicks, bot hits, daily salts and UTM settings

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-03 13:13:38
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import campaign.db

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "link_salts",
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("salt", sa.LargeBinary(length=32), nullable=False),
        sa.Column("created_at", campaign.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("day", name=op.f("pk_link_salts")),
    )
    op.create_table(
        "link_settings",
        sa.Column("organisation_id", sa.Integer(), nullable=False),
        sa.Column("utm_enabled", sa.Boolean(), nullable=False),
        sa.Column("override_existing", sa.Boolean(), nullable=False),
        sa.Column("source_mode", sa.String(length=16), nullable=False),
        sa.Column("source_value", sa.String(length=100), nullable=False),
        sa.Column("medium_mode", sa.String(length=16), nullable=False),
        sa.Column("medium_value", sa.String(length=100), nullable=False),
        sa.Column("campaign_mode", sa.String(length=16), nullable=False),
        sa.Column("campaign_value", sa.String(length=100), nullable=False),
        sa.Column("content_mode", sa.String(length=16), nullable=False),
        sa.Column("content_value", sa.String(length=100), nullable=False),
        sa.Column("updated_at", campaign.db.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "campaign_mode in ('campaign', 'custom', 'off')",
            name=op.f("ck_link_settings_campaign_mode_known"),
        ),
        sa.CheckConstraint(
            "content_mode in ('variant', 'custom', 'off')",
            name=op.f("ck_link_settings_content_mode_known"),
        ),
        sa.CheckConstraint(
            "medium_mode in ('custom', 'off')", name=op.f("ck_link_settings_medium_mode_known")
        ),
        sa.CheckConstraint(
            "source_mode in ('network', 'channel', 'custom', 'off')",
            name=op.f("ck_link_settings_source_mode_known"),
        ),
        sa.ForeignKeyConstraint(
            ["organisation_id"],
            ["organisations.id"],
            name=op.f("fk_link_settings_organisation_id_organisations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("organisation_id", name=op.f("pk_link_settings")),
    )
    op.create_table(
        "tracked_links",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(length=16), nullable=False),
        sa.Column("delivery_id", sa.Integer(), nullable=False),
        sa.Column("organisation_id", sa.Integer(), nullable=False),
        sa.Column("target_url", sa.String(length=2000), nullable=False),
        sa.Column("target_sha256", sa.String(length=64), nullable=False),
        sa.Column("created_at", campaign.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["delivery_id"],
            ["deliveries.id"],
            name=op.f("fk_tracked_links_delivery_id_deliveries"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["organisation_id"],
            ["organisations.id"],
            name=op.f("fk_tracked_links_organisation_id_organisations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tracked_links")),
        sa.UniqueConstraint("code", name=op.f("uq_tracked_links_code")),
        sa.UniqueConstraint(
            "delivery_id", "target_sha256", name=op.f("uq_tracked_links_delivery_id_target_sha256")
        ),
    )
    with op.batch_alter_table("tracked_links", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_tracked_links_organisation_id"), ["organisation_id"], unique=False
        )

    op.create_table(
        "link_bot_hits",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("link_id", sa.Integer(), nullable=False),
        sa.Column("at", campaign.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("bot", sa.String(length=40), nullable=False),
        sa.Column("user_agent", sa.String(length=300), nullable=False),
        sa.ForeignKeyConstraint(
            ["link_id"],
            ["tracked_links.id"],
            name=op.f("fk_link_bot_hits_link_id_tracked_links"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_link_bot_hits")),
    )
    with op.batch_alter_table("link_bot_hits", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_link_bot_hits_at"), ["at"], unique=False)
        batch_op.create_index("ix_link_bot_hits_link_id_at", ["link_id", "at"], unique=False)

    op.create_table(
        "link_clicks",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("link_id", sa.Integer(), nullable=False),
        sa.Column("clicked_at", campaign.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("visitor_hash", sa.String(length=32), nullable=True),
        sa.Column("is_first_today", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(
            ["link_id"],
            ["tracked_links.id"],
            name=op.f("fk_link_clicks_link_id_tracked_links"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_link_clicks")),
    )
    with op.batch_alter_table("link_clicks", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_link_clicks_day"), ["day"], unique=False)
        batch_op.create_index(
            "ix_link_clicks_link_id_clicked_at", ["link_id", "clicked_at"], unique=False
        )
        batch_op.create_index(
            "uq_link_clicks_first_today",
            ["link_id", "day", "visitor_hash"],
            unique=True,
            sqlite_where=sa.text("is_first_today"),
            postgresql_where=sa.text("is_first_today"),
        )


def downgrade() -> None:
    with op.batch_alter_table("link_clicks", schema=None) as batch_op:
        batch_op.drop_index(
            "uq_link_clicks_first_today",
            sqlite_where=sa.text("is_first_today"),
            postgresql_where=sa.text("is_first_today"),
        )
        batch_op.drop_index("ix_link_clicks_link_id_clicked_at")
        batch_op.drop_index(batch_op.f("ix_link_clicks_day"))

    op.drop_table("link_clicks")
    with op.batch_alter_table("link_bot_hits", schema=None) as batch_op:
        batch_op.drop_index("ix_link_bot_hits_link_id_at")
        batch_op.drop_index(batch_op.f("ix_link_bot_hits_at"))

    op.drop_table("link_bot_hits")
    with op.batch_alter_table("tracked_links", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_tracked_links_organisation_id"))

    op.drop_table("tracked_links")
    op.drop_table("link_settings")
    op.drop_table("link_salts")
