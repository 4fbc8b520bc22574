"""Mastodon instance limits on channels

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-03 08:16:33
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import campaign.db

revision: str = '0005'
down_revision: str | None = '0004'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('channels', schema=None) as batch_op:
        batch_op.add_column(sa.Column('max_characters', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('characters_per_url', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('limits_checked_at', campaign.db.UTCDateTime(timezone=True), nullable=True))



def downgrade() -> None:
    with op.batch_alter_table('channels', schema=None) as batch_op:
        batch_op.drop_column('limits_checked_at')
        batch_op.drop_column('characters_per_url')
        batch_op.drop_column('max_characters')

