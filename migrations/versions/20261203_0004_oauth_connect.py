"""oauth connect: a registered app per Mastodon instance, pending OAuth authorizations

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-03 07:59:14
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import campaign.db

revision: str = '0004'
down_revision: str | None = '0003'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('mastodon_apps',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('instance_url', sa.String(length=500), nullable=False),
    sa.Column('client_id', sa.String(length=500), nullable=False),
    sa.Column('client_secret_encrypted', sa.LargeBinary(), nullable=False),
    sa.Column('redirect_uri', sa.String(length=1000), nullable=False),
    sa.Column('created_at', campaign.db.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_mastodon_apps')),
    sa.UniqueConstraint('instance_url', name=op.f('uq_mastodon_apps_instance_url'))
    )
    op.create_table('oauth_authorizations',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('state', sa.String(length=128), nullable=False),
    sa.Column('organisation_id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('base_url', sa.String(length=500), nullable=True),
    sa.Column('channel_name', sa.String(length=200), nullable=False),
    sa.Column('audience', sa.String(length=40), nullable=False),
    sa.Column('channel_id', sa.Integer(), nullable=True),
    sa.Column('verifier_encrypted', sa.LargeBinary(), nullable=True),
    sa.Column('created_at', campaign.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('used_at', campaign.db.UTCDateTime(timezone=True), nullable=True),
    sa.CheckConstraint("kind in ('x', 'mastodon')", name=op.f('ck_oauth_authorizations_kind_known')),
    sa.ForeignKeyConstraint(['channel_id'], ['channels.id'], name=op.f('fk_oauth_authorizations_channel_id_channels'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['organisation_id'], ['organisations.id'], name=op.f('fk_oauth_authorizations_organisation_id_organisations'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_oauth_authorizations_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_oauth_authorizations')),
    sa.UniqueConstraint('state', name=op.f('uq_oauth_authorizations_state'))
    )


def downgrade() -> None:
    op.drop_table('oauth_authorizations')
    op.drop_table('mastodon_apps')
