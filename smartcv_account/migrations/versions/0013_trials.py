"""trials: a plan's trial length, when a subscription first started (one trial per user, ever),
the trial-ending notice, the local provider's trial, coupon and setup intent; and the payment
waiting on the customer (latestPayment); a local invoice's dispute and refunds

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-05 22:00:00.000000

"""
from alembic import op
import sqlalchemy as sa

import smartcv_account.models.types


# revision identifiers, used by Alembic.
revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('plans', schema=None) as batch_op:
        batch_op.add_column(sa.Column('trial_days', sa.Integer(), server_default='0', nullable=False))

    with op.batch_alter_table('subscriptions', schema=None) as batch_op:
        batch_op.add_column(sa.Column('started_at', smartcv_account.models.types.UTCDateTime(), nullable=True))
        batch_op.add_column(sa.Column('trial_notice_sent_at', smartcv_account.models.types.UTCDateTime(), nullable=True))
        batch_op.add_column(sa.Column('latest_payment_status', sa.String(length=40), nullable=True))
        batch_op.add_column(sa.Column('latest_payment_cents', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('hosted_invoice_url', sa.String(length=500), nullable=True))
    # A subscription the provider ever started (paid, trialing, past due, or ended after
    # that) counts; a create that never left INCOMPLETE and a placeholder do not.
    op.execute(
        "UPDATE subscriptions SET started_at = created_at"
        " WHERE provider_subscription_id IS NOT NULL AND status <> 'INCOMPLETE'"
        " AND current_period_start IS NOT NULL"
    )

    with op.batch_alter_table('local_subscriptions', schema=None) as batch_op:
        batch_op.add_column(sa.Column('trial_end', smartcv_account.models.types.UTCDateTime(), nullable=True))
        batch_op.add_column(sa.Column('coupon_code', sa.String(length=40), nullable=True))
        batch_op.add_column(sa.Column('setup_intent_id', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('setup_client_secret', sa.String(length=255), nullable=True))
        batch_op.add_column(sa.Column('setup_status', sa.String(length=40), nullable=True))

    with op.batch_alter_table('local_invoices', schema=None) as batch_op:
        batch_op.add_column(sa.Column('dispute_status', sa.String(length=30), nullable=True))
        batch_op.add_column(sa.Column('amount_refunded', sa.Integer(), server_default='0', nullable=False))


def downgrade():
    with op.batch_alter_table('local_invoices', schema=None) as batch_op:
        batch_op.drop_column('amount_refunded')
        batch_op.drop_column('dispute_status')

    with op.batch_alter_table('local_subscriptions', schema=None) as batch_op:
        batch_op.drop_column('setup_status')
        batch_op.drop_column('setup_client_secret')
        batch_op.drop_column('setup_intent_id')
        batch_op.drop_column('coupon_code')
        batch_op.drop_column('trial_end')

    with op.batch_alter_table('subscriptions', schema=None) as batch_op:
        batch_op.drop_column('hosted_invoice_url')
        batch_op.drop_column('latest_payment_cents')
        batch_op.drop_column('latest_payment_status')
        batch_op.drop_column('trial_notice_sent_at')
        batch_op.drop_column('started_at')

    with op.batch_alter_table('plans', schema=None) as batch_op:
        batch_op.drop_column('trial_days')
