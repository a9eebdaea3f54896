"""One-use challenges kept on the server (`webauthn_challenges`): handed out, then spent once.

A passkey ceremony's challenge (`register`, `authenticate`; services/passkeys.py) and a social
sign-in waiting for its second factor (`second_factor`; services/social_sign_in.py) are each
kept as the SHA-256 of a random value, with an expiry and, where one is known, the user. The
value goes to the browser; taking it back deletes the row, so a copy of it is worth nothing
once it was used.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

import sqlalchemy as sa

from .. import clock
from ..extensions import db
from ..models import WebAuthnChallenge

ROWS = WebAuthnChallenge


def issue(purpose: str, user_id: int | None, lifetime: timedelta) -> bytes:
    """Make and keep a challenge for `purpose` (and the user, if given); forget expired ones."""
    challenge = secrets.token_bytes(32)
    now = clock.now()
    db.session.execute(sa.delete(ROWS).where(ROWS.expires_at <= now))
    db.session.add(
        ROWS(
            challenge_hash=_hash(challenge),
            purpose=purpose,
            user_id=user_id,
            expires_at=now + lifetime,
        )
    )
    return challenge


def is_live(challenge: bytes, purpose: str, user_id: int | None) -> bool:
    """Tell whether the challenge is kept, unexpired and unspent, for this purpose and user."""
    found = db.session.scalar(sa.select(ROWS.id).where(*_matching(challenge, purpose, user_id)))
    return found is not None


def take(challenge: bytes, purpose: str, user_id: int | None) -> bool:
    """Spend the challenge: delete it and tell whether it was live (two racing takes: one)."""
    statement = sa.delete(ROWS).where(*_matching(challenge, purpose, user_id))
    return db.session.execute(statement).rowcount == 1


def _matching(challenge: bytes, purpose: str, user_id: int | None) -> tuple:
    """The conditions of the live challenge `challenge` for this purpose and user."""
    return (
        ROWS.challenge_hash == _hash(challenge),
        ROWS.purpose == purpose,
        ROWS.expires_at > clock.now(),
        ROWS.user_id.is_(None) if user_id is None else ROWS.user_id == user_id,
    )


def _hash(challenge: bytes) -> str:
    """The form the database keeps."""
    return hashlib.sha256(challenge).hexdigest()
