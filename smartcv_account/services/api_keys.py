"""Personal API keys: made, listed and revoked by their owner; revoked in bulk by a password
reset, an account deletion or an operator.

A key is live while it is neither revoked nor expired. Its secret is shown once, in the answer
that makes it (services/key_secrets.py), and never stored. Revocation is a column in the
database that the verify call (services/key_check.py) reads in its one statement, so a revoked
key stops working at once on every instance: nothing caches keys.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa

from .. import client, clock
from ..errors import ApiError
from ..extensions import db
from ..models import ApiKey, User
from ..principal import Principal
from . import activity, key_secrets, notices
from .identity import new_public_id
from .locking import lock_user
from .reauth import confirm_owner

# Each scope's bit in `api_keys.scope_bits`; a new scope takes the next bit.
SCOPES = {"resumes:read": 1, "resumes:write": 2, "ai:use": 4, "account:read": 8}
MAX_LIVE_KEYS = 10
KEY_ID = re.compile(r"key_[0-9a-f]{24}")


def scope_bits(scopes: list[str]) -> int:
    """The bits of a list of scope names."""
    bits = 0
    for scope in scopes:
        bits |= SCOPES[scope]
    return bits


def scope_names(bits: int) -> list[str]:
    """The scope names of `bits`, in SCOPES' order."""
    return [name for name, bit in SCOPES.items() if bits & bit]


@dataclass(frozen=True, slots=True)
class KeyView:
    """A key as its owner sees it; `secret` only in the answer that made it."""

    id: str
    name: str
    scopes: list[str]
    prefix: str
    created_at: datetime
    expires_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None = None
    secret: str | None = None


def _view(key: ApiKey, secret: str | None = None) -> KeyView:
    """Turn a key row into what its owner sees (never its hash)."""
    return KeyView(
        id=key.public_id,
        name=key.name,
        scopes=scope_names(key.scope_bits),
        prefix=key.prefix,
        created_at=key.created_at,
        expires_at=key.expires_at,
        last_used_at=key.last_used_at,
        revoked_at=key.revoked_at,
        secret=secret,
    )


def _live(user_id: int, now: datetime) -> sa.ColumnElement[bool]:
    """The condition under which one of the user's keys still works."""
    return sa.and_(ApiKey.user_id == user_id, ApiKey.revoked_at.is_(None), ApiKey.expires_at > now)


def create_key(
    principal: Principal,
    name: str,
    scopes: list[str],
    expires_in_days: int,
    current_password: str | None,
) -> KeyView:
    """Make a key for the signed-in user and return it with its secret (shown this once).

    The password first (counted by the guessing limit; an account without one: a recent
    sign-in, `reauth.confirm_owner`), then the verified email, then the
    number of live keys, counted under the user's row lock so that racing creates never pass
    MAX_LIVE_KEYS.
    """
    user = lock_user(principal)
    confirm_owner(user, principal, "api_key_creation", password=current_password)
    if user.email_verified_at is None:
        raise ApiError("EMAIL_NOT_VERIFIED", "Verify your email address before making an API key.")
    now = clock.now()
    live = db.session.scalar(
        sa.select(sa.func.count()).select_from(ApiKey).where(_live(user.id, now))
    )
    if live >= MAX_LIVE_KEYS:
        raise ApiError(
            "API_KEY_LIMIT_REACHED",
            f"You have {MAX_LIVE_KEYS} live API keys, the most allowed; revoke one first.",
        )
    secret = key_secrets.new_secret()
    key = ApiKey(
        public_id=new_public_id("key"),
        user_id=user.id,
        name=name,
        scope_bits=scope_bits(scopes),
        prefix=key_secrets.shown_prefix(secret),
        secret_hash=key_secrets.secret_hash(secret),
        created_at=now,
        expires_at=now + timedelta(days=expires_in_days),
    )
    db.session.add(key)
    activity.record(user.id, "api_key_created", {"keyId": key.public_id, "name": name})
    notices.api_key_created(user, key.name, key.prefix, scope_names(key.scope_bits))
    return _view(key, secret)


def list_keys(principal: Principal) -> list[KeyView]:
    """Return the user's live keys, newest first."""
    rows = db.session.scalars(
        sa.select(ApiKey)
        .where(_live(principal.id, clock.now()))
        .order_by(ApiKey.created_at.desc(), ApiKey.id.desc())
    )
    return [_view(row) for row in rows]


def revoke_key(principal: Principal, public_id: str) -> None:
    """Revoke one live key of the signed-in user; another user's or an unknown id is 404."""
    user = lock_user(principal)
    key = None
    # Anything not shaped like an id is not looked up (a NUL would be a PostgreSQL error).
    if KEY_ID.fullmatch(public_id):
        key = db.session.scalar(
            sa.select(ApiKey).where(_live(user.id, clock.now()), ApiKey.public_id == public_id)
        )
    if key is None:
        raise ApiError(
            "API_KEY_NOT_FOUND", "You have no live API key with this id.", {"field": "id"}
        )
    key.revoked_at = clock.now()
    activity.record(user.id, "api_key_revoked", {"keyId": key.public_id})


def revoke_all(user: User, reason: str, caller: client.Client | None = None) -> int:
    """Revoke every live key of `user`; return how many (no commit).

    `reason` (`password_reset`, `operator`) goes into the activity event, recorded when a key
    was revoked.
    """
    now = clock.now()
    count = db.session.execute(
        sa.update(ApiKey)
        .where(_live(user.id, now))
        .values(revoked_at=now)
        .execution_options(synchronize_session=False)
    ).rowcount
    if count:
        details = {"all": True, "count": count, "reason": reason}
        activity.record(user.id, "api_key_revoked", details, caller)
    return count


def exported(user_id: int) -> list[KeyView]:
    """Every key kept for the user, revoked and expired ones too, newest first (no secret)."""
    rows = db.session.scalars(
        sa.select(ApiKey)
        .where(ApiKey.user_id == user_id)
        .order_by(ApiKey.created_at.desc(), ApiKey.id.desc())
    )
    return [_view(row) for row in rows]
