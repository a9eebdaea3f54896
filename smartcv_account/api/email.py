"""Email verification, password reset by email and email change."""

from flask import Blueprint, current_app
from flask_login import current_user, login_required

from ..extensions import limiter
from ..idempotency import idempotent, session_caller
from ..schemas.account import dump_account
from ..schemas.base import load_body
from ..schemas.email import (
    email_change_schema,
    password_reset_request_schema,
    password_reset_schema,
    token_schema,
)
from ..services import accounts, recovery
from . import ok
from .account import _user_key
from .auth import _email_key

bp = Blueprint("email", __name__)


def _limit(name: str) -> str:
    """Return a rate-limit string from the configuration."""
    return current_app.config[name]


@bp.post("/auth/verify-email/request")
@login_required
@limiter.limit(lambda: _limit("RATELIMIT_VERIFY_EMAIL_PER_USER"), key_func=_user_key)
def request_verification():
    """Send a new verification link to the signed-in user's address."""
    recovery.request_verification(current_user._get_current_object())
    return ok(status=202)


@bp.post("/auth/verify-email")
def verify_email():
    """Verify the address a verification link was sent to."""
    user = recovery.verify_email(load_body(token_schema)["token"])
    return ok(dump_account(accounts.account_view(user)))


@bp.post("/auth/password-reset/request")
@limiter.limit(lambda: _limit("RATELIMIT_PASSWORD_RESET_PER_ADDRESS"))
@limiter.limit(lambda: _limit("RATELIMIT_PASSWORD_RESET_PER_EMAIL"), key_func=_email_key)
def request_password_reset():
    """Send a reset link if the address has an account; the answer is the same either way."""
    recovery.request_password_reset(load_body(password_reset_request_schema)["email"])
    return ok(status=202)


@bp.post("/auth/password-reset")
def reset_password():
    """Set a new password with a reset link's token; every session ends."""
    fields = load_body(password_reset_schema)
    recovery.reset_password(fields["token"], fields["new_password"], fields.get("two_factor_code"))
    return ok()


@bp.post("/account/email")
@login_required
@idempotent(session_caller)
@limiter.limit(lambda: _limit("RATELIMIT_EMAIL_CHANGE_PER_USER"), key_func=_user_key)
def request_email_change():
    """Ask to move the account to a new address (confirmed by a link sent there)."""
    fields = load_body(email_change_schema)
    recovery.request_email_change(
        current_user._get_current_object(), fields["new_email"], fields["current_password"]
    )
    return ok(status=202)


@bp.post("/account/email/confirm")
def confirm_email_change():
    """Move the account to the address an email-change link was sent to."""
    user = recovery.confirm_email_change(load_body(token_schema)["token"])
    return ok(dump_account(accounts.account_view(user)))
