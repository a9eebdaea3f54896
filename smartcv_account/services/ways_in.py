"""What every way in shares: starting the session, and keeping at least one way in.

An account signs in with its password, a passkey or a linked identity at an OpenID Connect
provider. Each sign-in ends the session the browser held before, records `login_succeeded`
with the method (`password`, `passkey`, `oidc:<name>`) and starts a fresh session. An account
without a password must keep one passkey or identity: removing the last is LAST_SIGN_IN_METHOD.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa

from .. import clock
from ..errors import ApiError
from ..extensions import db
from ..models import LinkedIdentity, Passkey, User
from ..principal import Principal
from . import activity, sessions
from .account_view import AccountView, account_view
from .identity import new_public_id


@dataclass(frozen=True, slots=True)
class SignIn:
    """A session just started: its token (for the cookie) and the account to show."""

    token: str
    account: AccountView


def new_user(
    email: str, name: str, password_hash: str | None, email_verified_at: datetime | None = None
) -> User:
    """Add a new account on the free plan with default preferences (the caller flushes)."""
    now = clock.now()
    user = User(
        public_id=new_public_id("user"),
        email=email,
        password_hash=password_hash,
        name=name,
        language="en",
        timezone="UTC",
        theme="light",
        email_notifications=True,
        marketing_emails=False,
        resumes_created=0,
        api_requests_used=0,
        storage_used=0,
        two_factor_enabled=False,
        email_verified_at=email_verified_at,
        created_at=now,
        updated_at=now,
        last_login_at=now,
    )
    db.session.add(user)
    return user


def start(user: User, new: bool = False) -> SignIn:
    """Start a session for `user` (`new`: just registered); return its token and the account."""
    token = sessions.start_session(user)
    return SignIn(token, account_view(Principal.of(user, token, new=new)))


def finish_sign_in(user: User, method: str, replaces: str | None) -> SignIn:
    """Record a successful sign-in by `method` and start a session, ending `replaces`'."""
    if replaces is not None:
        sessions.revoke_session(replaces)
    user.last_login_at = clock.now()
    activity.record(user.id, "login_succeeded", {"method": method})
    return start(user)


def keep_a_way_in(user: User) -> None:
    """Refuse to remove one passkey or identity when it is the account's only way in."""
    if user.password_hash is not None:
        return
    count = db.session.scalar(
        sa.select(
            sa.select(sa.func.count()).where(Passkey.user_id == user.id).scalar_subquery()
            + sa.select(sa.func.count()).where(LinkedIdentity.user_id == user.id).scalar_subquery()
        )
    )
    if count <= 1:
        raise ApiError(
            "LAST_SIGN_IN_METHOD",
            "This is your only way to sign in; add a passkey, link another account or set a"
            " password (through a password reset) first.",
        )
