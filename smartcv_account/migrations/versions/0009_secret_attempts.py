"""the per-account guessing limit's counter on users

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-05 19:40:00.000000

"""
from alembic import op
import sqlalchemy as sa

import smartcv_account.models.types


# revision identifiers, used by Alembic.
revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.add_column(sa.Column('secret_attempts', sa.Integer(), server_default='0', nullable=False))
        batch_op.add_column(sa.Column('secret_attempts_since', smartcv_account.models.types.UTCDateTime(), nullable=True))


def downgrade():
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.drop_column('secret_attempts_since')
        batch_op.drop_column('secret_attempts')
