"""Experiments, their arms and their balanced, seeded slots

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-03 16:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import campaign.db

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_CHOSEN_ARM_FK = "fk_experiments_chosen_arm_id_experiment_arms"


def _sqlite() -> bool:
    return op.get_bind().dialect.name == "sqlite"


def upgrade() -> None:
    # experiments.chosen_arm_id and experiment_arms.experiment_id refer to each other: SQLite
    # accepts a reference to a table made later; PostgreSQL gets the constraint once both exist.
    chosen_arm_fk = (
        [
            sa.ForeignKeyConstraint(
                ["chosen_arm_id"], ["experiment_arms.id"], name=_CHOSEN_ARM_FK, ondelete="SET NULL"
            )
        ]
        if _sqlite()
        else []
    )
    op.create_table(
        "experiments",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("organisation_id", sa.Integer(), nullable=False),
        sa.Column("message_id", sa.Integer(), nullable=True),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("hypothesis", sa.Text(), nullable=False),
        sa.Column("primary_metric", sa.String(length=40), nullable=False),
        sa.Column("report_age_seconds", sa.Integer(), nullable=False),
        sa.Column("alpha", sa.Double(), nullable=False),
        sa.Column("minimum_lift", sa.Double(), nullable=False),
        sa.Column("baseline_rate", sa.Double(), nullable=True),
        sa.Column("planned_posts_per_arm", sa.Integer(), nullable=False),
        sa.Column("planned_impressions_per_arm", sa.Integer(), nullable=True),
        sa.Column("verdict_rule", sa.String(length=20), nullable=False),
        sa.Column("seed", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("approved_by_id", sa.Integer(), nullable=True),
        sa.Column("approved_at", campaign.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("concluded_by_id", sa.Integer(), nullable=True),
        sa.Column("concluded_at", campaign.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("decision", sa.String(length=40), nullable=True),
        sa.Column("chosen_arm_id", sa.Integer(), nullable=True),
        sa.Column("learning", sa.Text(), nullable=False),
        sa.Column("created_by_id", sa.Integer(), nullable=True),
        sa.Column("created_at", campaign.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", campaign.db.UTCDateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "primary_metric in ('clicks_per_impression', 'clicks_per_post')",
            name=op.f("ck_experiments_primary_metric_known"),
        ),
        sa.CheckConstraint(
            "verdict_rule in ('planned', 'sequential')",
            name=op.f("ck_experiments_verdict_rule_known"),
        ),
        sa.CheckConstraint(
            "status in ('planned', 'running', 'concluded', 'abandoned')",
            name=op.f("ck_experiments_status_known"),
        ),
        sa.CheckConstraint(
            "decision is null or decision in "
            "('adopt_variant', 'keep_control', 'no_difference', 'inconclusive')",
            name=op.f("ck_experiments_decision_known"),
        ),
        sa.CheckConstraint("alpha > 0 AND alpha < 1", name=op.f("ck_experiments_alpha_range")),
        sa.CheckConstraint(
            "report_age_seconds > 0", name=op.f("ck_experiments_report_age_positive")
        ),
        sa.ForeignKeyConstraint(
            ["approved_by_id"],
            ["users.id"],
            name=op.f("fk_experiments_approved_by_id_users"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["concluded_by_id"],
            ["users.id"],
            name=op.f("fk_experiments_concluded_by_id_users"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["created_by_id"],
            ["users.id"],
            name=op.f("fk_experiments_created_by_id_users"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["message_id"],
            ["messages.id"],
            name=op.f("fk_experiments_message_id_messages"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["organisation_id"],
            ["organisations.id"],
            name=op.f("fk_experiments_organisation_id_organisations"),
            ondelete="CASCADE",
        ),
        *chosen_arm_fk,
        sa.PrimaryKeyConstraint("id", name=op.f("pk_experiments")),
    )
    op.create_index(
        op.f("ix_experiments_organisation_id"), "experiments", ["organisation_id"], unique=False
    )
    op.create_index(op.f("ix_experiments_message_id"), "experiments", ["message_id"], unique=False)
    op.create_table(
        "experiment_arms",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("experiment_id", sa.Integer(), nullable=False),
        sa.Column("variant_id", sa.Integer(), nullable=True),
        sa.Column("name", sa.String(length=120), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.CheckConstraint("position >= 0", name=op.f("ck_experiment_arms_position_not_negative")),
        sa.ForeignKeyConstraint(
            ["experiment_id"],
            ["experiments.id"],
            name=op.f("fk_experiment_arms_experiment_id_experiments"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["variant_id"],
            ["variants.id"],
            name=op.f("fk_experiment_arms_variant_id_variants"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_experiment_arms")),
        sa.UniqueConstraint(
            "experiment_id", "position", name=op.f("uq_experiment_arms_experiment_id_position")
        ),
        sa.UniqueConstraint(
            "experiment_id", "variant_id", name=op.f("uq_experiment_arms_experiment_id_variant_id")
        ),
    )
    op.create_index(
        op.f("ix_experiment_arms_experiment_id"), "experiment_arms", ["experiment_id"], unique=False
    )
    if not _sqlite():
        op.create_foreign_key(
            _CHOSEN_ARM_FK,
            "experiments",
            "experiment_arms",
            ["chosen_arm_id"],
            ["id"],
            ondelete="SET NULL",
        )
    op.create_table(
        "experiment_slots",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("experiment_id", sa.Integer(), nullable=False),
        sa.Column("channel_id", sa.Integer(), nullable=False),
        sa.Column("scheduled_at", campaign.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("arm_id", sa.Integer(), nullable=True),
        sa.Column("post_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["arm_id"],
            ["experiment_arms.id"],
            name=op.f("fk_experiment_slots_arm_id_experiment_arms"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["channel_id"],
            ["channels.id"],
            name=op.f("fk_experiment_slots_channel_id_channels"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["experiment_id"],
            ["experiments.id"],
            name=op.f("fk_experiment_slots_experiment_id_experiments"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["post_id"],
            ["posts.id"],
            name=op.f("fk_experiment_slots_post_id_posts"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_experiment_slots")),
        sa.UniqueConstraint(
            "experiment_id",
            "channel_id",
            "scheduled_at",
            name=op.f("uq_experiment_slots_experiment_id_channel_id_scheduled_at"),
        ),
    )
    op.create_index(
        op.f("ix_experiment_slots_experiment_id"),
        "experiment_slots",
        ["experiment_id"],
        unique=False,
    )
    op.create_index(
        op.f("ix_experiment_slots_arm_id"), "experiment_slots", ["arm_id"], unique=False
    )
    op.create_index(
        op.f("ix_experiment_slots_post_id"), "experiment_slots", ["post_id"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_experiment_slots_post_id"), table_name="experiment_slots")
    op.drop_index(op.f("ix_experiment_slots_arm_id"), table_name="experiment_slots")
    op.drop_index(op.f("ix_experiment_slots_experiment_id"), table_name="experiment_slots")
    op.drop_table("experiment_slots")
    if _sqlite():
        # Dropping a referenced table deletes its rows first; clear the reference beforehand.
        op.execute("UPDATE experiments SET chosen_arm_id = NULL")
    else:
        op.drop_constraint(_CHOSEN_ARM_FK, "experiments", type_="foreignkey")
    op.drop_index(op.f("ix_experiment_arms_experiment_id"), table_name="experiment_arms")
    op.drop_table("experiment_arms")
    op.drop_index(op.f("ix_experiments_message_id"), table_name="experiments")
    op.drop_index(op.f("ix_experiments_organisation_id"), table_name="experiments")
    op.drop_table("experiments")
