"""Confirming the owner before a guarded change: the password, or a recent sign-in.

An account with a password confirms a guarded change (deletion, the security settings, an
email change, adding a passkey) with `currentPassword`, counted by the guessing limit. An
account without one (made by social sign-in) has no password to give: it confirms with a
sign-in less than `RECENT_SIGN_IN` old instead, else 401 REAUTHENTICATION_REQUIRED. A session
is started by a sign-in (a password change starts a new one too), so its start is the time
of the sign-in.
"""

from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa

from .. import clock
from ..errors import ApiError, validation_error
from ..extensions import db
from ..models import AuthSession, User
from ..principal import Principal
from . import guessing

RECENT_SIGN_IN = timedelta(minutes=10)


def require_recent_sign_in(principal: Principal) -> None:
    """Refuse with REAUTHENTICATION_REQUIRED unless this session signed in recently."""
    started = db.session.scalar(
        sa.select(AuthSession.created_at).where(AuthSession.id == principal.session_id)
    )
    if started is None or clock.now() - started >= RECENT_SIGN_IN:
        raise ApiError(
            "REAUTHENTICATION_REQUIRED",
            "Sign in again to confirm this change (your sign-in is over 10 minutes old).",
        )


def confirm_owner(
    user: User,
    principal: Principal,
    action: str,
    *,
    password: str | None,
    second_factor: bool = False,
    two_factor_code: str | None = None,
) -> None:
    """Check the password (or, without one, a recent sign-in) and the second factor.

    The caller holds `user` locked. A password account that sends no `currentPassword` is
    refused as a missing field, before anything is counted.
    """
    if user.password_hash is None:
        require_recent_sign_in(principal)
        password = None
    elif password is None:
        raise validation_error({"currentPassword": ["Missing data for required field."]})
    guessing.confirm_secrets(
        user,
        action,
        password=password,
        second_factor=second_factor,
        two_factor_code=two_factor_code,
    )
