"""Email verification, password reset by email and email change (the emailed-link flows).

Each flow writes its link to the outbox in the transaction of its change (mail/outbox.py) and
commits once. A link's token is checked before anything else, but used up only when the change
succeeds: a weak new password or a missing second factor leaves it working.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from .. import clock
from ..errors import ApiError, field_error
from ..extensions import db
from ..mail import outbox, quota
from ..mail.names import third_party_name
from ..models import LinkedIdentity, Passkey, PasswordResetRequest, User
from ..principal import Principal
from . import activity, api_keys, credentials, notices, sessions, tokens
from .credentials import personal_words, require_strong
from .guessing import confirm_secrets
from .identity import normalise_email
from .locking import lock_user
from .reauth import confirm_owner
from .second_factor import disable_two_factor


def _send_link(user: User, kind: str, address: str) -> None:
    """Issue a token of `kind` (voiding older ones) and queue its link to `address`."""
    token = tokens.issue(user, kind, address)
    kind_of_link = tokens.KINDS[kind]
    # An address the account has not proved (a new one, an unverified one) may be a stranger's.
    proved = address == user.email and user.email_verified_at is not None
    outbox.enqueue(
        address,
        kind_of_link.template,
        user_id=user.id,
        link_token=token,
        name=user.name if proved else third_party_name(user.name),
        email=address,
        link=outbox.link(kind_of_link.page),
    )


def send_verification_link(user: User) -> None:
    """Queue a fresh verification link to the account's address (voids older links)."""
    _send_link(user, "verify_email", user.email)


def request_verification(user: User | Principal) -> None:
    """Send a new verification link, unless the address is verified already."""
    user = lock_user(user)
    if user.email_verified_at is not None:
        raise ApiError("EMAIL_ALREADY_VERIFIED", "Your email address is already verified.")
    send_verification_link(user)


def verify_email(token: str) -> User:
    """Mark the address the link went to as verified."""
    found, user = tokens.redeem(token, "verify_email")
    tokens.use(found)
    if user.email_verified_at is None:
        user.email_verified_at = clock.now()
        user.updated_at = clock.now()
        activity.record(user.id, "email_verified")
    return user


def request_password_reset(email: str) -> None:
    """Record that a reset link was asked for; the worker sends it if the address is known.

    Known and unknown addresses cost the request the same INSERT and nothing else: whether an
    account exists is looked up by the mail worker (`compose_reset_links`), out of the
    request's time.
    """
    db.session.add(PasswordResetRequest(email=normalise_email(email), created_at=clock.now()))


def compose_reset_links(limit: int = 100) -> int:
    """Turn recorded reset requests into reset links to known addresses; return how many sent.

    Several requests for one address in a batch make one link. A request is deleted by the
    worker that composes it, so two workers never both act on it.
    """
    pending = sa.select(PasswordResetRequest).order_by(PasswordResetRequest.id).limit(limit)
    if db.engine.dialect.name == "postgresql":
        pending = pending.with_for_update(skip_locked=True)
    emails: set[str] = set()
    for request in db.session.scalars(pending).all():
        deleted = db.session.execute(
            sa.delete(PasswordResetRequest).where(PasswordResetRequest.id == request.id)
        )
        if deleted.rowcount == 1:
            emails.add(request.email)
    sent = 0
    for email in sorted(emails):
        user = db.session.scalar(sa.select(User).where(User.email == email))
        if user is not None:
            _send_link(user, "password_reset", user.email)
            sent += 1
    db.session.commit()
    return sent


def reset_password(token: str, new_password: str, two_factor_code: str | None) -> None:
    """Set a new password from a reset link: every session and API key ends, every other link
    dies, the address counts as verified.

    On an account whose address was never verified, the link is the first proof of who owns
    the address: whatever was set up before it (a second factor, sessions, a pending email
    change, passkeys, linked identities) may be someone else's, so no second factor is asked
    and all of it goes.
    """
    found, user = tokens.redeem(token, "password_reset")
    require_strong(new_password, "newPassword", personal_words(user.email, user.name))
    unverified = user.email_verified_at is None
    if user.two_factor_enabled and not unverified:
        confirm_secrets(user, "password_reset", second_factor=True, two_factor_code=two_factor_code)
    tokens.use(found)
    now = clock.now()
    user.password_hash = credentials.hash_password(new_password)
    # As a password change: a login racing this one is dead on arrival (services/sessions.py).
    user.credential_version = User.credential_version + 1
    db.session.flush()
    sessions.revoke_user_sessions(user)
    # A reset is how a stolen account is taken back: keys made by whoever held it go too.
    api_keys.revoke_all(user, "password_reset")
    tokens.void_all(user)
    if unverified:
        if user.two_factor_enabled:
            disable_two_factor(user)
            activity.record(user.id, "two_factor_disabled")
        # Passkeys and identities linked before the address was proved may be an attacker's.
        for model in (Passkey, LinkedIdentity):
            db.session.execute(sa.delete(model).where(model.user_id == user.id))
        # The link reached this address, which proves it.
        user.email_verified_at = now
    user.updated_at = now
    notices.password_reset(user)
    activity.record(user.id, "password_reset")


def _email_taken(email: str, user: User) -> bool:
    """Tell whether another account has `email`."""
    other = db.session.scalar(sa.select(User.id).where(User.email == email, User.id != user.id))
    return other is not None


def _taken_error(**details) -> ApiError:
    """The EMAIL_TAKEN answer of the email change."""
    return ApiError("EMAIL_TAKEN", "An account with this email already exists.", details)


def request_email_change(
    principal: Principal, new_email: str, current_password: str | None
) -> None:
    """Send a confirmation link to the new address and a notice to the current one."""
    user = lock_user(principal)
    confirm_owner(user, principal, "email_change", password=current_password)
    new_email = normalise_email(new_email)
    if new_email == user.email:
        raise field_error(
            "VALIDATION_ERROR",
            "newEmail: This is already your email address.",
            "newEmail",
            fields={"newEmail": ["This is already your email address."]},
        )
    if _email_taken(new_email, user):
        raise _taken_error(field="newEmail")
    # At most a few confirmations an hour to one address, whoever asks (429 past that).
    quota.reserve_confirmation(new_email)
    _send_link(user, "email_change", new_email)
    notices.email_change_requested(user, new_email)
    activity.record(user.id, "email_change_requested")


def confirm_email_change(token: str) -> User:
    """Move the account to the confirmed address, verified; tell the old address."""
    found, user = tokens.redeem(token, "email_change")
    if _email_taken(found.email, user):
        raise _taken_error()
    tokens.use(found)
    old_email = user.email
    now = clock.now()
    user.email = found.email
    user.email_verified_at = now
    user.updated_at = now
    try:
        # Flushed on its own, before any statement could autoflush it outside this `try`.
        db.session.flush()
    except IntegrityError:
        # Taken in the moment between the check and this write (a registration, another
        # account's confirmation): nothing is kept or sent.
        db.session.rollback()
        raise _taken_error() from None
    tokens.void(user, "verify_email")
    tokens.void(user, "password_reset")
    notices.email_changed(user, old_email)
    activity.record(user.id, "email_changed")
    return user
