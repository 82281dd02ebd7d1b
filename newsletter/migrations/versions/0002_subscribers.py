"""subscribers, lists, subscriptions, consent events, import runs, suppressions and segments

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-28 15:54:59.508400

Only the subscriber stage's tables: other stages add their own revisions.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql
import newsletter.db

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('mailing_lists',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('description', sa.Text(), nullable=False),
    sa.Column('double_opt_in', sa.Boolean(), nullable=False),
    sa.Column('created_at', newsletter.db.UtcDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_mailing_lists')),
    sa.UniqueConstraint('name', name=op.f('uq_mailing_lists_name'))
    )
    op.create_table('subscribers',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('email', sa.String(length=254), nullable=False),
    sa.Column('name', sa.Text(), nullable=False),
    sa.Column('attributes', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('status', sa.Enum('active', 'unsubscribed', 'bounced', 'complained', 'blocked', name='subscriberstatus', native_enum=False, length=32), nullable=False),
    sa.Column('created_at', newsletter.db.UtcDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', newsletter.db.UtcDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_subscribers')),
    sa.UniqueConstraint('email', name=op.f('uq_subscribers_email'))
    )
    op.create_table('suppressions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('email_hash', sa.String(length=64), nullable=False),
    sa.Column('reason', sa.Enum('erased', name='suppressionreason', native_enum=False, length=32), nullable=False),
    sa.Column('created_at', newsletter.db.UtcDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_suppressions')),
    sa.UniqueConstraint('email_hash', name=op.f('uq_suppressions_email_hash'))
    )
    op.create_table('consent_events',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('subscriber_id', sa.Integer(), nullable=False),
    sa.Column('list_id', sa.Integer(), nullable=True),
    sa.Column('action', sa.Enum('subscribe', 'confirm', 'unsubscribe', name='consentaction', native_enum=False, length=32), nullable=False),
    sa.Column('source', sa.Enum('import', 'form', 'api', 'admin', 'email', name='consentsource', native_enum=False, length=32), nullable=False),
    sa.Column('ip', sa.String(length=45), nullable=True),
    sa.Column('user_agent', sa.Text(), nullable=True),
    sa.Column('at', newsletter.db.UtcDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['list_id'], ['mailing_lists.id'], name=op.f('fk_consent_events_list_id_mailing_lists'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['subscriber_id'], ['subscribers.id'], name=op.f('fk_consent_events_subscriber_id_subscribers'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_consent_events'))
    )
    with op.batch_alter_table('consent_events', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_consent_events_subscriber_id'), ['subscriber_id'], unique=False)

    op.create_table('segments',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('list_id', sa.Integer(), nullable=False),
    sa.Column('expression', sa.Text(), nullable=False),
    sa.Column('created_at', newsletter.db.UtcDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['list_id'], ['mailing_lists.id'], name=op.f('fk_segments_list_id_mailing_lists'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_segments')),
    sa.UniqueConstraint('name', name=op.f('uq_segments_name'))
    )
    op.create_table('subscriber_imports',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('list_id', sa.Integer(), nullable=False),
    sa.Column('file_name', sa.Text(), nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=True),
    sa.Column('source', sa.Enum('import', 'form', 'api', 'admin', 'email', name='consentsource', native_enum=False, length=32), nullable=False),
    sa.Column('started_at', newsletter.db.UtcDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['list_id'], ['mailing_lists.id'], name=op.f('fk_subscriber_imports_list_id_mailing_lists'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_subscriber_imports'))
    )
    op.create_table('subscriptions',
    sa.Column('subscriber_id', sa.Integer(), nullable=False),
    sa.Column('list_id', sa.Integer(), nullable=False),
    sa.Column('status', sa.Enum('unconfirmed', 'confirmed', 'unsubscribed', name='subscriptionstatus', native_enum=False, length=32), nullable=False),
    sa.Column('created_at', newsletter.db.UtcDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', newsletter.db.UtcDateTime(timezone=True), nullable=False),
    sa.Column('consent_source', sa.Enum('import', 'form', 'api', 'admin', 'email', name='consentsource', native_enum=False, length=32), nullable=True),
    sa.Column('consented_at', newsletter.db.UtcDateTime(timezone=True), nullable=True),
    sa.Column('consent_ip', sa.String(length=45), nullable=True),
    sa.Column('import_id', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['list_id'], ['mailing_lists.id'], name=op.f('fk_subscriptions_list_id_mailing_lists'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['subscriber_id'], ['subscribers.id'], name=op.f('fk_subscriptions_subscriber_id_subscribers'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('subscriber_id', 'list_id', name=op.f('pk_subscriptions'))
    )
    with op.batch_alter_table('subscriptions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_subscriptions_list_id'), ['list_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('subscriptions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_subscriptions_list_id'))

    op.drop_table('subscriptions')
    op.drop_table('subscriber_imports')
    op.drop_table('segments')
    with op.batch_alter_table('consent_events', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_consent_events_subscriber_id'))

    op.drop_table('consent_events')
    op.drop_table('suppressions')
    op.drop_table('subscribers')
    op.drop_table('mailing_lists')
