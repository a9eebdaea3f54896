"""sessions a person can recognise, the activity log, deleted accounts

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-29 23:50:00

"""
import secrets

import sqlalchemy as sa
from alembic import op

from smartcv_account.models.types import UTCDateTime


# revision identifiers, used by Alembic.
revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('auth_sessions', schema=None) as batch_op:
        batch_op.add_column(sa.Column('public_id', sa.String(length=40), nullable=True))
        batch_op.add_column(sa.Column('last_seen_at', UTCDateTime(), nullable=True))
        batch_op.add_column(sa.Column('ip_address', sa.String(length=45), nullable=True))
        batch_op.add_column(sa.Column('user_agent', sa.String(length=512), nullable=True))

    # Sessions started before this revision: a fresh public id each, last seen when started.
    connection = op.get_bind()
    sessions = sa.table(
        'auth_sessions',
        sa.column('id', sa.Integer),
        sa.column('public_id', sa.String),
        sa.column('created_at', UTCDateTime),
        sa.column('last_seen_at', UTCDateTime),
    )
    for (session_id,) in connection.execute(sa.select(sessions.c.id)).all():
        connection.execute(
            sa.update(sessions)
            .where(sessions.c.id == session_id)
            .values(public_id=f"sess_{secrets.token_hex(12)}", last_seen_at=sessions.c.created_at)
        )

    # auth_sessions is referenced by no other table, so SQLite's table copy is safe here.
    with op.batch_alter_table('auth_sessions', schema=None) as batch_op:
        batch_op.alter_column('public_id', existing_type=sa.String(length=40), nullable=False)
        batch_op.alter_column('last_seen_at', existing_type=UTCDateTime(), nullable=False)
        batch_op.create_index('ix_auth_sessions_public_id', ['public_id'], unique=True)

    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.add_column(sa.Column('deleted_at', UTCDateTime(), nullable=True))

    op.create_table('activity_events',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('public_id', sa.String(length=40), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('type', sa.String(length=40), nullable=False),
    sa.Column('created_at', UTCDateTime(), nullable=False),
    sa.Column('ip_address', sa.String(length=45), nullable=True),
    sa.Column('user_agent', sa.String(length=512), nullable=True),
    sa.Column('details', sa.JSON(), nullable=False),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('public_id')
    )
    with op.batch_alter_table('activity_events', schema=None) as batch_op:
        batch_op.create_index('ix_activity_events_created_at', ['created_at'], unique=False)
        batch_op.create_index('ix_activity_events_user_created', ['user_id', 'created_at', 'id'], unique=False)


def downgrade():
    with op.batch_alter_table('activity_events', schema=None) as batch_op:
        batch_op.drop_index('ix_activity_events_user_created')
        batch_op.drop_index('ix_activity_events_created_at')

    op.drop_table('activity_events')
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.drop_column('deleted_at')

    with op.batch_alter_table('auth_sessions', schema=None) as batch_op:
        batch_op.drop_index('ix_auth_sessions_public_id')
        batch_op.drop_column('user_agent')
        batch_op.drop_column('ip_address')
        batch_op.drop_column('last_seen_at')
        batch_op.drop_column('public_id')
