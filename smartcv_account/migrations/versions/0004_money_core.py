"""money core: change versions, pending changes, coupon redemptions, local provider books

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-29 23:50:00.000000

"""
import sqlalchemy as sa
from alembic import op

from smartcv_account.models.types import UTCDateTime


# revision identifiers, used by Alembic.
revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('subscriptions', schema=None) as batch_op:
        batch_op.add_column(sa.Column('pending_plan_id', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('pending_expires_at', UTCDateTime(), nullable=True))
        batch_op.add_column(sa.Column('next_invoice_amount_cents', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('version', sa.Integer(), server_default='0', nullable=False))

    op.create_table('coupon_redemptions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('coupon_code', sa.String(length=40), nullable=False),
    sa.Column('redeemed_at', UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('user_id', 'coupon_code')
    )

    with op.batch_alter_table('local_subscriptions', schema=None) as batch_op:
        batch_op.add_column(sa.Column('pending_expires_at', UTCDateTime(), nullable=True))

    with op.batch_alter_table('local_invoices', schema=None) as batch_op:
        batch_op.add_column(sa.Column('total', sa.Integer(), server_default='0', nullable=False))
        batch_op.add_column(sa.Column('discount', sa.Integer(), server_default='0', nullable=False))
        batch_op.add_column(sa.Column('number', sa.Integer(), nullable=True))
    with op.batch_alter_table('local_customers', schema=None) as batch_op:
        batch_op.add_column(
            sa.Column('invoice_count', sa.Integer(), server_default='0', nullable=False)
        )

    op.create_table('local_invoice_items',
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('subscription_id', sa.String(length=64), nullable=False),
    sa.Column('description', sa.String(length=200), nullable=False),
    sa.Column('amount', sa.Integer(), nullable=False),
    sa.Column('invoice_id', sa.String(length=64), nullable=True),
    sa.Column('created_at', UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['subscription_id'], ['local_subscriptions.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('local_invoice_items', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_local_invoice_items_subscription_id'), ['subscription_id'], unique=False)

    op.create_table('local_idempotency_keys',
    sa.Column('key', sa.String(length=255), nullable=False),
    sa.Column('request_digest', sa.String(length=64), nullable=False),
    sa.Column('response', sa.JSON(), nullable=False),
    sa.Column('created_at', UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('key')
    )


def downgrade():
    op.drop_table('local_idempotency_keys')
    with op.batch_alter_table('local_invoice_items', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_local_invoice_items_subscription_id'))
    op.drop_table('local_invoice_items')
    with op.batch_alter_table('local_customers', schema=None) as batch_op:
        batch_op.drop_column('invoice_count')
    with op.batch_alter_table('local_invoices', schema=None) as batch_op:
        batch_op.drop_column('number')
        batch_op.drop_column('discount')
        batch_op.drop_column('total')
    with op.batch_alter_table('local_subscriptions', schema=None) as batch_op:
        batch_op.drop_column('pending_expires_at')
    op.drop_table('coupon_redemptions')
    with op.batch_alter_table('subscriptions', schema=None) as batch_op:
        batch_op.drop_column('version')
        batch_op.drop_column('next_invoice_amount_cents')
        batch_op.drop_column('pending_expires_at')
        batch_op.drop_column('pending_plan_id')
