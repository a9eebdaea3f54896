"""personal API keys

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-05 22:00:00.000000

"""
from alembic import op
import sqlalchemy as sa

import smartcv_account.models.types


# revision identifiers, used by Alembic.
revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('api_keys',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('public_id', sa.String(length=40), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('scope_bits', sa.Integer(), nullable=False),
    sa.Column('prefix', sa.String(length=12), nullable=False),
    sa.Column('secret_hash', sa.String(length=64), nullable=False),
    sa.Column('created_at', smartcv_account.models.types.UTCDateTime(), nullable=False),
    sa.Column('expires_at', smartcv_account.models.types.UTCDateTime(), nullable=False),
    sa.Column('revoked_at', smartcv_account.models.types.UTCDateTime(), nullable=True),
    sa.Column('last_used_at', smartcv_account.models.types.UTCDateTime(), nullable=True),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('public_id'),
    sa.UniqueConstraint('secret_hash')
    )
    with op.batch_alter_table('api_keys', schema=None) as batch_op:
        batch_op.create_index('ix_api_keys_user_id', ['user_id'], unique=False)


def downgrade():
    with op.batch_alter_table('api_keys', schema=None) as batch_op:
        batch_op.drop_index('ix_api_keys_user_id')
    op.drop_table('api_keys')
