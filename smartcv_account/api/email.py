"""Email verification, password reset by email and email change."""

from flask import Blueprint, current_app
from flask_login import login_required

from ..extensions import limiter
from ..idempotency import IDEMPOTENCY_ERRORS, idempotent, session_caller
from ..openapi import endpoint
from ..schemas.account import account_schema
from ..schemas.email import (
    email_change_schema,
    password_reset_request_schema,
    password_reset_schema,
    token_schema,
)
from ..services import accounts, recovery
from ..session_cookie import signed_in
from .account import user_key
from .auth import email_key

bp = Blueprint("email", __name__)


def _limit(name: str) -> str:
    """Return a rate-limit string from the configuration."""
    return current_app.config[name]


@bp.post("/auth/verify-email/request")
@login_required
@limiter.limit(lambda: _limit("RATELIMIT_VERIFY_EMAIL_PER_USER"), key_func=user_key)
@endpoint(None, status=202, errors=("EMAIL_ALREADY_VERIFIED", "RATE_LIMITED"))
def request_verification():
    """Send a new verification link to the signed-in user's address.

    Needs a session. Queues a new verification email to the account's address (the answer is
    202: it is sent shortly after). Rate limited; EMAIL_ALREADY_VERIFIED when there is nothing
    to verify.
    """
    recovery.request_verification(signed_in())


@bp.post("/auth/verify-email")
@endpoint(account_schema, body=token_schema, errors=("INVALID_TOKEN",), security=None)
def verify_email(fields):
    """Verify the address a verification link was sent to.

    No session needed: the token is the proof. Marks the address verified and spends the token
    (a token works once and expires). Returns the account.
    """
    return accounts.account_view(recovery.verify_email(fields["token"]))


@bp.post("/auth/password-reset/request")
@limiter.limit(lambda: _limit("RATELIMIT_PASSWORD_RESET_PER_ADDRESS"))
@limiter.limit(lambda: _limit("RATELIMIT_PASSWORD_RESET_PER_EMAIL"), key_func=email_key)
@endpoint(
    None, body=password_reset_request_schema, status=202, errors=("RATE_LIMITED",), security=None
)
def request_password_reset(fields):
    """Send a reset link if the address has an account; the answer is the same either way.

    Anyone may call it; rate limited. When the address has an account, a reset link is emailed;
    the answer is the same 202 either way, so it never tells whether an account exists.
    """
    recovery.request_password_reset(fields["email"])


@bp.post("/auth/password-reset")
@endpoint(
    None,
    body=password_reset_schema,
    errors=("INVALID_TOKEN", "WEAK_PASSWORD", "TWO_FACTOR_REQUIRED", "INVALID_TWO_FACTOR_CODE"),
    security=None,
)
def reset_password(fields):
    """Set a new password with a reset link's token; every session ends.

    No session needed: the token from the link is the proof, plus `twoFactorCode` when two-
    factor is on. Sets the new strong password, spends the token and signs out every session of
    the user; sign in again afterwards.
    """
    recovery.reset_password(fields["token"], fields["new_password"], fields.get("two_factor_code"))


@bp.post("/account/email")
@login_required
@idempotent(session_caller)
@limiter.limit(lambda: _limit("RATELIMIT_EMAIL_CHANGE_PER_USER"), key_func=user_key)
@endpoint(
    None,
    body=email_change_schema,
    status=202,
    errors=(
        "INVALID_PASSWORD",
        "EMAIL_TAKEN",
        "REAUTHENTICATION_REQUIRED",
        "RATE_LIMITED",
        *IDEMPOTENCY_ERRORS,
    ),
)
def request_email_change(fields):
    """Ask to move the account to a new address (confirmed by a link sent there).

    Needs a session and the current password. Emails a confirmation link to `newEmail` (and a
    notice to the current address); nothing changes until the link is used. Honours
    `Idempotency-Key`.
    """
    recovery.request_email_change(signed_in(), fields["new_email"], fields.get("current_password"))


@bp.post("/account/email/confirm")
@endpoint(account_schema, body=token_schema, errors=("INVALID_TOKEN", "EMAIL_TAKEN"), security=None)
def confirm_email_change(fields):
    """Move the account to the address an email-change link was sent to.

    No session needed: the token is the proof. Moves the account to the new address (verified,
    since the link reached it) unless another account has taken it meanwhile. Returns the
    account.
    """
    return accounts.account_view(recovery.confirm_email_change(fields["token"]))
