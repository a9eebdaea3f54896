"""dunning retries and the test clock's renewals

Revision ID: 0005
Revises: 0003
Create Date: 2026-11-29 23:45:00

"""
from alembic import op
import sqlalchemy as sa

from smartcv_account.models.types import UTCDateTime


# revision identifiers, used by Alembic.
revision = '0005'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade():
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
