"""dunning retries and reconciled provider subscriptions

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-29 23:45:00

"""
from alembic import op
import sqlalchemy as sa

from smartcv_account.models.types import UTCDateTime


# revision identifiers, used by Alembic.
revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('unreconciled_subscriptions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('provider_subscription_id', sa.String(length=64), nullable=False),
    sa.Column('customer_id', sa.String(length=64), nullable=True),
    sa.Column('user_id', sa.Integer(), nullable=True),
    sa.Column('status', sa.String(length=20), nullable=True),
    sa.Column('reason', sa.String(length=40), nullable=False),
    sa.Column('event_id', sa.String(length=255), nullable=False),
    sa.Column('created_at', UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('unreconciled_subscriptions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_unreconciled_subscriptions_provider_subscription_id'), ['provider_subscription_id'], unique=False)

    with op.batch_alter_table('local_invoices', schema=None) as batch_op:
        batch_op.add_column(sa.Column('attempt_count', sa.Integer(), server_default='0', nullable=False))
        batch_op.add_column(sa.Column('next_payment_attempt', UTCDateTime(), nullable=True))

    with op.batch_alter_table('subscriptions', schema=None) as batch_op:
        batch_op.add_column(sa.Column('next_payment_attempt', UTCDateTime(), nullable=True))


def downgrade():
    with op.batch_alter_table('subscriptions', schema=None) as batch_op:
        batch_op.drop_column('next_payment_attempt')

    with op.batch_alter_table('local_invoices', schema=None) as batch_op:
        batch_op.drop_column('next_payment_attempt')
        batch_op.drop_column('attempt_count')

    with op.batch_alter_table('unreconciled_subscriptions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_unreconciled_subscriptions_provider_subscription_id'))

    op.drop_table('unreconciled_subscriptions')
