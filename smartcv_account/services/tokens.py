"""One-time email links: random tokens, stored hashed, single use, expiring.

The token (256 random bits) exists only in the link; the database keeps its SHA-256, so a
leaked table opens no account. Issuing a token deletes the user's older ones of that kind.
`redeem` checks a token without using it up; `use` marks it used when the change succeeds, in
the change's transaction, so a refused attempt (a weak password, a missing second factor)
leaves the link working.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import timedelta

import sqlalchemy as sa

from .. import clock
from ..errors import field_error
from ..extensions import db
from ..models import EmailToken, User
from .locking import lock_user_where


@dataclass(frozen=True, slots=True)
class LinkKind:
    """One kind of emailed link: how long it stays valid, the message that carries it and the
    front end's page it opens (`{APP_BASE_URL}/<page>?token=…`)."""

    lifetime: timedelta
    template: str
    page: str


KINDS = {
    "verify_email": LinkKind(timedelta(hours=24), "verify_email", "verify-email"),
    "password_reset": LinkKind(timedelta(hours=1), "password_reset", "reset-password"),
    "email_change": LinkKind(timedelta(hours=24), "email_change_confirm", "confirm-email"),
    # Kept on the invitation itself (services/teams/invitations.py): the invited address may
    # have no account yet.
    "team_invitation": LinkKind(timedelta(days=7), "team_invitation", "accept-invite"),
}


def digest(token: str) -> str:
    """Return the SHA-256 of a token, the only form the database keeps."""
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def new_token() -> str:
    """Return a new link token: 256 random bits, URL-safe."""
    return secrets.token_urlsafe(32)


def issue(user: User, kind: str, email: str) -> str:
    """Make a token of `kind` for `user`, sent to `email`, voiding older ones; return it."""
    db.session.execute(
        sa.delete(EmailToken).where(EmailToken.user_id == user.id, EmailToken.kind == kind)
    )
    token = new_token()
    now = clock.now()
    db.session.add(
        EmailToken(
            user_id=user.id,
            kind=kind,
            token_hash=digest(token),
            email=email,
            created_at=now,
            expires_at=now + KINDS[kind].lifetime,
        )
    )
    return token


def void(user: User, kind: str) -> None:
    """Delete the user's outstanding tokens of `kind` (the caller commits)."""
    db.session.execute(
        sa.delete(EmailToken).where(EmailToken.user_id == user.id, EmailToken.kind == kind)
    )


def void_all(user: User) -> None:
    """Delete every outstanding token of the user: a password change or reset voids each link
    sent before it, whatever its kind (the caller commits)."""
    db.session.execute(sa.delete(EmailToken).where(EmailToken.user_id == user.id))


def invalid_token():
    """The one answer for an unknown, used, expired or wrong-kind token."""
    return field_error(
        "INVALID_TOKEN",
        "This link is invalid or has expired; ask for a new one.",
        "token",
    )


def redeem(token: str, kind: str) -> tuple[EmailToken, User]:
    """Return the live token of `kind` and its user, both locked for this transaction, or raise.

    The user's row is locked first (`locking.lock_user_where`), then the token is read again
    under it: every writer takes the user's lock before anything else, so a link racing a
    deletion or a password change waits for it or is waited for, and never deadlocks with it.
    """
    found_hash = digest(token)
    user_id = db.session.scalar(
        sa.select(EmailToken.user_id).where(EmailToken.token_hash == found_hash)
    )
    user = lock_user_where(User.id == user_id) if user_id is not None else None
    found = None
    if user is not None:
        found = db.session.scalar(
            sa.select(EmailToken)
            .where(EmailToken.token_hash == found_hash)
            .execution_options(populate_existing=True)
        )
    if (
        found is None
        or found.kind != kind
        or found.used_at is not None
        or found.expires_at <= clock.now()
    ):
        raise invalid_token()
    # Verification and reset links prove the address the account has now, not an old one.
    if kind != "email_change" and user.email != found.email:
        raise invalid_token()
    return found, user


def use(found: EmailToken) -> None:
    """Mark the token used; a concurrent use of the same token makes this one INVALID_TOKEN."""
    result = db.session.execute(
        sa.update(EmailToken)
        .where(EmailToken.id == found.id, EmailToken.used_at.is_(None))
        .values(used_at=clock.now())
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:
        db.session.rollback()
        raise invalid_token()
