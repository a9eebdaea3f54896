"""the account each outbox message is about, its link's token kept apart until sent, and the
count of email-change confirmations per address

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-06 10:00:00.000000

"""
from alembic import op
import sqlalchemy as sa

import smartcv_account.models.types


# revision identifiers, used by Alembic.
revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('mail_outbox', schema=None) as batch_op:
        batch_op.add_column(sa.Column('user_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('link_token', sa.String(length=64), nullable=True))
        batch_op.create_index(batch_op.f('ix_mail_outbox_user_id'), ['user_id'], unique=False)
        batch_op.create_foreign_key('fk_mail_outbox_user_id_users', 'users', ['user_id'], ['id'], ondelete='CASCADE')

    op.create_table('confirmation_mail_counts',
    sa.Column('address_hash', sa.String(length=64), nullable=False),
    sa.Column('window_start', smartcv_account.models.types.UTCDateTime(), nullable=False),
    sa.Column('sent', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('address_hash')
    )


def downgrade():
    op.drop_table('confirmation_mail_counts')
    with op.batch_alter_table('mail_outbox', schema=None) as batch_op:
        batch_op.drop_constraint('fk_mail_outbox_user_id_users', type_='foreignkey')
        batch_op.drop_index(batch_op.f('ix_mail_outbox_user_id'))
        batch_op.drop_column('link_token')
        batch_op.drop_column('user_id')
