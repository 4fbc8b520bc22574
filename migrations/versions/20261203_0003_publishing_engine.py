"""publishing engine: attempts, outbox, channel caps

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-03 07:24:19
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import campaign.db

revision: str = '0003'
down_revision: str | None = '0002'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('outbox_entries',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('channel_id', sa.Integer(), nullable=False),
    sa.Column('idempotency_key', sa.String(length=64), nullable=False),
    sa.Column('text', sa.Text(), nullable=False),
    sa.Column('link_url', sa.String(length=2000), nullable=True),
    sa.Column('published_at', campaign.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['channel_id'], ['channels.id'], name=op.f('fk_outbox_entries_channel_id_channels'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_outbox_entries')),
    sa.UniqueConstraint('idempotency_key', name=op.f('uq_outbox_entries_idempotency_key'))
    )
    with op.batch_alter_table('outbox_entries', schema=None) as batch_op:
        batch_op.create_index('ix_outbox_entries_channel_id_published_at', ['channel_id', 'published_at'], unique=False)

    op.create_table('delivery_attempts',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('delivery_id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=10), nullable=False),
    sa.Column('number', sa.Integer(), nullable=False),
    sa.Column('lease_token', sa.String(length=64), nullable=False),
    sa.Column('worker_id', sa.String(length=120), nullable=False),
    sa.Column('idempotency_key', sa.String(length=64), nullable=False),
    sa.Column('started_at', campaign.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('finished_at', campaign.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('outcome', sa.String(length=20), nullable=False),
    sa.Column('http_status', sa.Integer(), nullable=True),
    sa.Column('error', sa.Text(), nullable=True),
    sa.CheckConstraint("kind in ('publish', 'lookup')", name=op.f('ck_delivery_attempts_kind_known')),
    sa.CheckConstraint("outcome in ('pending', 'published', 'retry', 'failed', 'unknown', 'duplicate', 'found', 'not_found', 'lookup_unavailable', 'lease_lost', 'lease_expired', 'released')", name=op.f('ck_delivery_attempts_outcome_known')),
    sa.ForeignKeyConstraint(['delivery_id'], ['deliveries.id'], name=op.f('fk_delivery_attempts_delivery_id_deliveries'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_delivery_attempts'))
    )
    with op.batch_alter_table('delivery_attempts', schema=None) as batch_op:
        batch_op.create_index('ix_delivery_attempts_delivery_id_lease_token', ['delivery_id', 'lease_token'], unique=False)

    with op.batch_alter_table('channels', schema=None) as batch_op:
        batch_op.add_column(sa.Column('max_posts_per_hour', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('max_posts_per_day', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('status_detail', sa.Text(), nullable=True))
        batch_op.add_column(sa.Column('account_label', sa.String(length=200), nullable=True))

    with op.batch_alter_table('deliveries', schema=None) as batch_op:
        batch_op.add_column(sa.Column('lease_owner', sa.String(length=120), nullable=True))
        batch_op.add_column(sa.Column('first_attempt_at', campaign.db.UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('lookups', sa.Integer(), nullable=False, server_default='0'))
        batch_op.add_column(sa.Column('posted_by_id', sa.Integer(), nullable=True))
        batch_op.create_foreign_key(batch_op.f('fk_deliveries_posted_by_id_users'), 'users', ['posted_by_id'], ['id'], ondelete='SET NULL')



def downgrade() -> None:
    with op.batch_alter_table('deliveries', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_deliveries_posted_by_id_users'), type_='foreignkey')
        batch_op.drop_column('posted_by_id')
        batch_op.drop_column('lookups')
        batch_op.drop_column('first_attempt_at')
        batch_op.drop_column('lease_owner')

    with op.batch_alter_table('channels', schema=None) as batch_op:
        batch_op.drop_column('account_label')
        batch_op.drop_column('status_detail')
        batch_op.drop_column('max_posts_per_day')
        batch_op.drop_column('max_posts_per_hour')

    with op.batch_alter_table('delivery_attempts', schema=None) as batch_op:
        batch_op.drop_index('ix_delivery_attempts_delivery_id_lease_token')

    op.drop_table('delivery_attempts')
    with op.batch_alter_table('outbox_entries', schema=None) as batch_op:
        batch_op.drop_index('ix_outbox_entries_channel_id_published_at')

    op.drop_table('outbox_entries')
