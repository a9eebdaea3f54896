"""A user's sessions and the export of everything the service holds about them.

Which session is "current" comes from the request: the session check's SELECT matches the
cookie's token hash to one session row and returns that row's id with the user
(`session_id` on the signed-in user, services/sessions.py). Nothing else marks it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from .. import clock
from ..errors import ApiError
from ..extensions import db
from ..models import (
    ActivityEvent,
    AuthSession,
    BackupCode,
    LinkedIdentity,
    Passkey,
    Subscription,
    User,
)
from ..principal import Principal
from . import account_view, activity, api_keys, billing
from .locking import lock_user
from .teams.views import memberships

SESSION_ID = re.compile(r"sess_[0-9a-f]{24}")


@dataclass(frozen=True, slots=True)
class SessionView:
    """A session as its owner sees it."""

    id: str
    created_at: datetime
    last_seen_at: datetime
    expires_at: datetime
    revoked_at: datetime | None
    ip_address: str | None
    user_agent: str | None
    current: bool


def _live(user) -> sa.ColumnElement[bool]:
    """The condition under which one of `user`'s sessions still signs them in."""
    return sa.and_(
        AuthSession.user_id == user.id,
        AuthSession.revoked_at.is_(None),
        AuthSession.expires_at > clock.now(),
        # The user's current version, read in the same statement (the principal does not
        # carry it): sessions minted before a password change are not live.
        AuthSession.credential_version
        == sa.select(User.credential_version).where(User.id == user.id).scalar_subquery(),
    )


def _view(row: AuthSession, current_session_id: int | None) -> SessionView:
    """Turn a session row into what its owner sees."""
    return SessionView(
        id=row.public_id,
        created_at=row.created_at,
        last_seen_at=row.last_seen_at,
        expires_at=row.expires_at,
        revoked_at=row.revoked_at,
        ip_address=row.ip_address,
        user_agent=row.user_agent,
        current=row.id == current_session_id,
    )


def list_sessions(user, current_session_id: int | None) -> list[SessionView]:
    """Return the user's live sessions, newest first."""
    rows = db.session.scalars(
        sa.select(AuthSession)
        .where(_live(user))
        .order_by(AuthSession.created_at.desc(), AuthSession.id.desc())
    )
    return [_view(row, current_session_id) for row in rows]


def revoke_session(user, public_id: str, current_session_id: int | None) -> bool:
    """Revoke one live session of the user; return whether it was the current one."""
    # Anything not shaped like an id is not looked up: a NUL in the path would be a
    # PostgreSQL error rather than a 404.
    target = None
    if SESSION_ID.fullmatch(public_id):
        target = db.session.scalar(
            sa.select(AuthSession).where(_live(user), AuthSession.public_id == public_id)
        )
    if target is None:
        raise ApiError(
            "SESSION_NOT_FOUND", "You have no active session with this id.", {"field": "id"}
        )
    target.revoked_at = clock.now()
    current = target.id == current_session_id
    activity.record(user.id, "session_revoked", {"sessionId": public_id, "current": current})
    return current


def revoke_other_sessions(user, current_session_id: int | None) -> int:
    """Revoke every live session of the user but the current one; return how many."""
    statement = sa.update(AuthSession).where(_live(user)).values(revoked_at=clock.now())
    if current_session_id is not None:
        statement = statement.where(AuthSession.id != current_session_id)
    count = db.session.execute(statement.execution_options(synchronize_session=False)).rowcount
    if count:
        activity.record(user.id, "session_revoked", {"others": True, "count": count})
    return count


def export(user, current_session_id: int | None) -> dict[str, Any]:
    """Gather everything held about the user (no secret), and record the export.

    Secrets stay out by construction: each part is built from an allow-list of columns, never
    from a whole row. The event is recorded before the activity is read, so the export
    includes its own `data_exported`.
    """
    model = lock_user(user)
    activity.record(model.id, "data_exported")
    db.session.flush()
    principal = Principal.of(model, user.session_token)
    document = {
        "exported_at": clock.now(),
        "account": account_view.account_view(principal),
        "teams": memberships(model.id) if principal.team_plan_type is not None else [],
        "security": _security(model),
        "sessions": [
            _view(row, current_session_id) for row in _newest_first(AuthSession, model.id)
        ],
        "activity": _newest_first(ActivityEvent, model.id),
        "subscription": billing.subscription_view(principal, client_secret=False),
        "subscriptions": _newest_first(Subscription, model.id),
        "invoices": billing.list_invoices(model),
        "passkeys": _oldest_first(Passkey, model.id),
        "identities": _oldest_first(LinkedIdentity, model.id),
        "api_keys": api_keys.exported(model.id),
    }
    # Everything is flushed and the document only reads from here on: detached, its rows are
    # not expired by the commit, so dumping it reads none of them again.
    db.session.expunge_all()
    return document


def _security(user: User) -> dict[str, Any]:
    """Security settings without their secrets: whether 2FA is on, how many codes are left."""
    unused = db.session.scalar(
        sa.select(sa.func.count())
        .select_from(BackupCode)
        .where(BackupCode.user_id == user.id, BackupCode.used_at.is_(None))
    )
    return {"two_factor_enabled": user.two_factor_enabled, "backup_codes_remaining": unused}


def _oldest_first(model, user_id: int) -> list:
    """Every passkey or linked identity of the user, oldest first."""
    return list(
        db.session.scalars(
            sa.select(model).where(model.user_id == user_id).order_by(model.created_at, model.id)
        )
    )


def _newest_first(model, user_id: int) -> list:
    """Every row of `model` (sessions, events, subscriptions) kept for the user, newest first."""
    return list(
        db.session.scalars(
            sa.select(model)
            .where(model.user_id == user_id)
            .order_by(model.created_at.desc(), model.id.desc())
        )
    )
