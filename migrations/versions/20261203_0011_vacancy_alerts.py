"""Vacancy alert rules, their template variants, and the alerts made from them

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-03 14:10:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import campaign.db

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "alert_rules",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("organisation_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("filters", sa.Text(), nullable=False),
        sa.Column("channel_ids", sa.Text(), nullable=False),
        sa.Column("requires_approval", sa.Boolean(), nullable=False),
        sa.Column("review_flags", sa.String(length=200), nullable=False),
        sa.Column("mode", sa.String(length=10), nullable=False),
        sa.Column("digest_max", sa.Integer(), nullable=False),
        sa.Column("quiet_start", sa.Time(), nullable=True),
        sa.Column("quiet_end", sa.Time(), nullable=True),
        sa.Column("created_at", campaign.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("created_by_id", sa.Integer(), nullable=True),
        sa.Column("updated_at", campaign.db.UTCDateTime(timezone=True), nullable=True),
        sa.CheckConstraint("mode in ('single', 'digest')", name=op.f("ck_alert_rules_mode_known")),
        sa.CheckConstraint(
            "digest_max >= 1 AND digest_max <= 25", name=op.f("ck_alert_rules_digest_max_range")
        ),
        sa.ForeignKeyConstraint(
            ["created_by_id"],
            ["users.id"],
            name=op.f("fk_alert_rules_created_by_id_users"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["organisation_id"],
            ["organisations.id"],
            name=op.f("fk_alert_rules_organisation_id_organisations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alert_rules")),
    )
    op.create_index(
        op.f("ix_alert_rules_organisation_id"), "alert_rules", ["organisation_id"], unique=False
    )
    op.create_table(
        "alert_templates",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("rule_id", sa.Integer(), nullable=False),
        sa.Column("label", sa.String(length=200), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("created_at", campaign.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["rule_id"],
            ["alert_rules.id"],
            name=op.f("fk_alert_templates_rule_id_alert_rules"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alert_templates")),
    )
    op.create_index(
        op.f("ix_alert_templates_rule_id"), "alert_templates", ["rule_id"], unique=False
    )
    op.create_table(
        "vacancy_alerts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("vacancy_id", sa.Integer(), nullable=False),
        sa.Column("rule_id", sa.Integer(), nullable=False),
        sa.Column("post_id", sa.Integer(), nullable=True),
        sa.Column("template_id", sa.Integer(), nullable=True),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("created_at", campaign.db.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "status in ('planned', 'refused')", name=op.f("ck_vacancy_alerts_status_known")
        ),
        sa.ForeignKeyConstraint(
            ["post_id"],
            ["posts.id"],
            name=op.f("fk_vacancy_alerts_post_id_posts"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["rule_id"],
            ["alert_rules.id"],
            name=op.f("fk_vacancy_alerts_rule_id_alert_rules"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["template_id"],
            ["alert_templates.id"],
            name=op.f("fk_vacancy_alerts_template_id_alert_templates"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["vacancy_id"],
            ["vacancies.id"],
            name=op.f("fk_vacancy_alerts_vacancy_id_vacancies"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_vacancy_alerts")),
        sa.UniqueConstraint(
            "vacancy_id", "rule_id", name=op.f("uq_vacancy_alerts_vacancy_id_rule_id")
        ),
    )
    op.create_index(
        "ix_vacancy_alerts_rule_id_created_at",
        "vacancy_alerts",
        ["rule_id", "created_at"],
        unique=False,
    )
    op.create_index(op.f("ix_vacancy_alerts_post_id"), "vacancy_alerts", ["post_id"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_vacancy_alerts_post_id"), table_name="vacancy_alerts")
    op.drop_index("ix_vacancy_alerts_rule_id_created_at", table_name="vacancy_alerts")
    op.drop_table("vacancy_alerts")
    op.drop_index(op.f("ix_alert_templates_rule_id"), table_name="alert_templates")
    op.drop_table("alert_templates")
    op.drop_index(op.f("ix_alert_rules_organisation_id"), table_name="alert_rules")
    op.drop_table("alert_rules")
