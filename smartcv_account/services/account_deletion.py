"""Deleting an account: confirm, cancel the paid subscription, erase the personal data.

The user's row stays as an erased tombstone rather than being deleted: subscriptions and the
provider's invoices refer to it (through the billing customer id), and the law requires
keeping invoices. Everything that identifies or describes the person goes: email, name,
avatar, preferences, password, second factor, passkeys, linked identities, sessions, API
keys, activity and usage. The public id is
replaced, so the old one is unknown everywhere (the internal usage API answers
USER_NOT_FOUND), and the email is replaced by a value that is not an address, so it is free
to register again and no login can ever match it.
"""

from __future__ import annotations

import secrets

import sqlalchemy as sa

from .. import clock
from ..errors import ApiError
from ..extensions import db
from ..mail import outbox
from ..models import (
    LIVE_STATUSES,
    ActivityEvent,
    ApiKey,
    AuthSession,
    BackupCode,
    EmailToken,
    LinkedIdentity,
    Passkey,
    PasswordResetRequest,
    Subscription,
    User,
)
from ..payments import get_gateway
from ..payments.base import GatewayError
from . import billing, credentials, notices, reauth
from .locking import lock_user
from .teams import departure

# What an erased account's preferences and counters go back to.
ERASED_VALUES = {
    "name": "",
    "avatar": None,
    "email_verified_at": None,
    "language": "en",
    "timezone": "UTC",
    "theme": "light",
    "email_notifications": False,
    "marketing_emails": False,
    "resumes_created": 0,
    "api_requests_used": 0,
    "storage_used": 0,
    "api_requests_reset_at": None,
    "two_factor_enabled": False,
    "totp_secret_encrypted": None,
    "totp_last_step": None,
    "last_login_at": None,
}


def delete_account(signed_in, current_password: str | None, two_factor_code: str | None) -> None:
    """Confirm with the password (and second factor), then cancel the subscription and erase.

    The provider is told first: if it cannot cancel the subscription (503) the account stays
    as it was. The erasure is then one transaction, which the goodbye notice joins.
    """
    user = lock_user(signed_in)
    reauth.confirm_owner(
        user,
        signed_in,
        "account_deletion",
        password=current_password,
        second_factor=True,
        two_factor_code=two_factor_code,
    )
    # Before the provider is told anything: a team the user alone owns holds the deletion back.
    departure.leave_every_team(user)
    new_public_id = f"deleted_{secrets.token_hex(12)}"
    try:
        _settle_with_provider(user, new_public_id)
    except GatewayError:
        db.session.rollback()
        raise ApiError(
            "SERVICE_UNAVAILABLE",
            "The payment provider could not be reached, so nothing was deleted; try again shortly.",
        ) from None
    # Mail to the old address or about the account goes with it (a confirmation waiting to go
    # to a new address too); the goodbye notice, which names no one, is then written in this
    # transaction, while the address is still known.
    outbox.forget(user.email, user.id)
    notices.account_deleted(user.email)
    _erase(user, new_public_id)


def _settle_with_provider(user: User, new_public_id: str) -> None:
    """Cancel the live subscription now and strip the provider's customer of email and name.

    Both are safe to repeat, so a retry after a 503 in between finishes the job.
    """
    subscription = _live_subscription(user)
    if subscription is not None:
        billing.cancel_immediately(subscription)
    if user.billing_customer_id is not None:
        get_gateway().forget_customer(user.billing_customer_id, new_public_id)


def _live_subscription(user: User) -> Subscription | None:
    """The user's subscription that still holds the slot, locked against a webhook's update."""
    return db.session.scalar(
        sa.select(Subscription)
        .where(Subscription.user_id == user.id, Subscription.status.in_(LIVE_STATUSES))
        .with_for_update()
    )


def _erase(user: User, new_public_id: str) -> None:
    """Erase everything personal about the user; keep the row for the invoices (no commit)."""
    now = clock.now()
    for table in (
        AuthSession,
        ActivityEvent,
        ApiKey,
        BackupCode,
        EmailToken,
        Passkey,
        LinkedIdentity,
    ):
        db.session.execute(sa.delete(table).where(table.user_id == user.id))
    db.session.execute(
        sa.delete(PasswordResetRequest).where(PasswordResetRequest.email == user.email)
    )
    for name, value in ERASED_VALUES.items():
        setattr(user, name, value)
    user.email = f"deleted:{secrets.token_hex(16)}"
    user.public_id = new_public_id
    # A hash of a random secret nobody holds: no password ever matches it.
    user.password_hash = credentials.hash_password(secrets.token_urlsafe(32))
    user.credential_version = User.credential_version + 1
    user.deleted_at = now
    user.updated_at = now
