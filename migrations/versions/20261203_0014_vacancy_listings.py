"""Vacancy listings: a source's GUID that names a vacancy held under another source's keys

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-03 19:50:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import campaign.db

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "vacancy_listings",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("source_id", sa.Integer(), nullable=False),
        sa.Column("guid_key", sa.String(length=1000), nullable=False),
        sa.Column("vacancy_id", sa.Integer(), nullable=False),
        sa.Column("created_at", campaign.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["source_id"],
            ["vacancy_sources.id"],
            name=op.f("fk_vacancy_listings_source_id_vacancy_sources"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["vacancy_id"],
            ["vacancies.id"],
            name=op.f("fk_vacancy_listings_vacancy_id_vacancies"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_vacancy_listings")),
        sa.UniqueConstraint(
            "source_id", "guid_key", name=op.f("uq_vacancy_listings_source_id_guid_key")
        ),
    )
    op.create_index(
        op.f("ix_vacancy_listings_vacancy_id"), "vacancy_listings", ["vacancy_id"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_vacancy_listings_vacancy_id"), table_name="vacancy_listings")
    op.drop_table("vacancy_listings")
