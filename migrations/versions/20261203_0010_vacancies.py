"""Vacancy sources (feeds, CSV uploads, pushes) and de-duplicated vacancies

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-03 14:00:29
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import campaign.db

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "vacancy_sources",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("organisation_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("kind", sa.String(length=10), nullable=False),
        sa.Column("url", sa.String(length=2000), nullable=True),
        sa.Column("poll_interval_minutes", sa.Integer(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("etag", sa.String(length=500), nullable=True),
        sa.Column("last_modified", sa.String(length=100), nullable=True),
        sa.Column("item_hashes", sa.Text(), nullable=True),
        sa.Column("last_polled_at", campaign.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("next_poll_at", campaign.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("last_status", sa.String(length=20), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("last_items", sa.Integer(), nullable=True),
        sa.Column("last_new", sa.Integer(), nullable=True),
        sa.Column("last_updated", sa.Integer(), nullable=True),
        sa.Column("last_warnings", sa.Text(), nullable=True),
        sa.Column("consecutive_errors", sa.Integer(), nullable=False),
        sa.Column("withdraw_after_polls", sa.Integer(), nullable=False),
        sa.Column("api_token_id", sa.Integer(), nullable=True),
        sa.Column("claimed_until", campaign.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("created_at", campaign.db.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "kind in ('feed', 'csv', 'push')", name=op.f("ck_vacancy_sources_kind_known")
        ),
        sa.CheckConstraint(
            "last_status is null or last_status in ('ok', 'not_modified', 'error')",
            name=op.f("ck_vacancy_sources_status_known"),
        ),
        sa.CheckConstraint(
            "poll_interval_minutes > 0", name=op.f("ck_vacancy_sources_interval_positive")
        ),
        sa.CheckConstraint(
            "withdraw_after_polls > 0", name=op.f("ck_vacancy_sources_withdraw_after_positive")
        ),
        sa.ForeignKeyConstraint(
            ["api_token_id"],
            ["api_tokens.id"],
            name=op.f("fk_vacancy_sources_api_token_id_api_tokens"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["organisation_id"],
            ["organisations.id"],
            name=op.f("fk_vacancy_sources_organisation_id_organisations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_vacancy_sources")),
        sa.UniqueConstraint("api_token_id", name=op.f("uq_vacancy_sources_api_token_id")),
    )
    with op.batch_alter_table("vacancy_sources", schema=None) as batch_op:
        batch_op.create_index(
            "ix_vacancy_sources_kind_enabled_next_poll_at",
            ["kind", "enabled", "next_poll_at"],
            unique=False,
        )
        batch_op.create_index(
            batch_op.f("ix_vacancy_sources_organisation_id"), ["organisation_id"], unique=False
        )

    op.create_table(
        "vacancies",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("organisation_id", sa.Integer(), nullable=False),
        sa.Column("source_id", sa.Integer(), nullable=False),
        sa.Column("external_id", sa.String(length=500), nullable=False),
        sa.Column("title", sa.String(length=500), nullable=False),
        sa.Column("employer", sa.String(length=300), nullable=False),
        sa.Column("location", sa.String(length=300), nullable=False),
        sa.Column("url", sa.String(length=2000), nullable=False),
        sa.Column("description_html", sa.Text(), nullable=False),
        sa.Column("description_text", sa.Text(), nullable=False),
        sa.Column("posted_at", campaign.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("closes_at", campaign.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("salary_text", sa.String(length=500), nullable=False),
        sa.Column("salary_min", sa.Numeric(precision=12, scale=2), nullable=True),
        sa.Column("salary_max", sa.Numeric(precision=12, scale=2), nullable=True),
        sa.Column("salary_currency", sa.String(length=3), nullable=True),
        sa.Column("salary_period", sa.String(length=10), nullable=True),
        sa.Column("flags", sa.String(length=200), nullable=False),
        sa.Column("warnings", sa.Text(), nullable=False),
        sa.Column("guid_key", sa.String(length=1000), nullable=True),
        sa.Column("url_key", sa.String(length=1000), nullable=True),
        sa.Column("fingerprint", sa.String(length=1000), nullable=True),
        sa.Column("title_key", sa.String(length=1000), nullable=False),
        sa.Column("content_hash", sa.String(length=64), nullable=False),
        sa.Column("tags", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("missing_polls", sa.Integer(), nullable=False),
        sa.Column("first_seen_at", campaign.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("last_seen_at", campaign.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", campaign.db.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "status in ('open', 'expired', 'withdrawn')", name=op.f("ck_vacancies_status_known")
        ),
        sa.CheckConstraint(
            "missing_polls >= 0", name=op.f("ck_vacancies_missing_polls_not_negative")
        ),
        sa.ForeignKeyConstraint(
            ["organisation_id"],
            ["organisations.id"],
            name=op.f("fk_vacancies_organisation_id_organisations"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["source_id"],
            ["vacancy_sources.id"],
            name=op.f("fk_vacancies_source_id_vacancy_sources"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_vacancies")),
    )
    with op.batch_alter_table("vacancies", schema=None) as batch_op:
        batch_op.create_index(
            "ix_vacancies_organisation_id_fingerprint",
            ["organisation_id", "fingerprint"],
            unique=False,
        )
        batch_op.create_index(
            "ix_vacancies_organisation_id_guid_key", ["organisation_id", "guid_key"], unique=False
        )
        batch_op.create_index(
            "ix_vacancies_organisation_id_status_closes_at",
            ["organisation_id", "status", "closes_at"],
            unique=False,
        )
        batch_op.create_index(
            "ix_vacancies_organisation_id_url_key", ["organisation_id", "url_key"], unique=False
        )
        batch_op.create_index(
            "ix_vacancies_source_id_external_id", ["source_id", "external_id"], unique=False
        )
        batch_op.create_index(
            "ix_vacancies_status_closes_at", ["status", "closes_at"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("vacancies", schema=None) as batch_op:
        batch_op.drop_index("ix_vacancies_status_closes_at")
        batch_op.drop_index("ix_vacancies_source_id_external_id")
        batch_op.drop_index("ix_vacancies_organisation_id_url_key")
        batch_op.drop_index("ix_vacancies_organisation_id_status_closes_at")
        batch_op.drop_index("ix_vacancies_organisation_id_guid_key")
        batch_op.drop_index("ix_vacancies_organisation_id_fingerprint")

    op.drop_table("vacancies")
    with op.batch_alter_table("vacancy_sources", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_vacancy_sources_organisation_id"))
        batch_op.drop_index("ix_vacancy_sources_kind_enabled_next_poll_at")

    op.drop_table("vacancy_sources")
