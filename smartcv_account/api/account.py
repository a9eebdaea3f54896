"""The account and its security settings."""

from flask import Blueprint
from flask_login import current_user, login_required

from ..openapi import Link, endpoint
from ..schemas.account import (
    account_schema,
    account_update_schema,
    security_result_schema,
    security_update_schema,
)
from ..services import accounts
from ..session_cookie import signed_in
from . import signing_in

bp = Blueprint("account", __name__)


# PUT takes back what GET shows: the account's name, avatar and preferences.
EDITABLE = {key: f"$response.body#/data/{key}" for key in ("name", "avatar", "preferences")}


@bp.get("")
@login_required
@endpoint(
    account_schema,
    links=(Link("update_account", "Change the account as read.", body=EDITABLE),),
)
def get_account():
    """Return the signed-in user's account.

    Needs a session. Changes nothing. Returns every field of the account: profile, verification,
    the plan type and status whose limits apply now, the usage counters with their limits (`-1`
    is unlimited) and all five preferences.
    """
    return accounts.account_view(signed_in())


@bp.put("")
@login_required
@endpoint(account_schema, body=account_update_schema)
def update_account(changes):
    """Update name, avatar and preferences (only the fields sent).

    Needs a session. Send any of `name`, `avatar` and `preferences`; fields left out keep their
    value, and `preferences` is merged key by key. `avatar` must be an https URL on a public
    host (it is stored normalised) or null to remove it. Returns the whole account as it is
    after the change.
    """
    return accounts.update_account(signed_in(), changes)


def user_key() -> str:
    """Rate-limit key: the signed-in user (the endpoint needs a session anyway)."""
    return "user:" + getattr(current_user, "public_id", "anonymous")


@bp.put("/security")
@login_required
@endpoint(
    security_result_schema,
    body=security_update_schema,
    errors=(
        "INVALID_PASSWORD",
        "WEAK_PASSWORD",
        "TWO_FACTOR_REQUIRED",
        "INVALID_TWO_FACTOR_CODE",
        "REAUTHENTICATION_REQUIRED",
        "RATE_LIMITED",
    ),
    message="Security settings updated successfully",
)
def update_security(changes):
    """Change the password and/or turn two-factor authentication on or off.

    Needs a session and `currentPassword` every time (wrong answers count toward the
    account's guessing limit, shared with every endpoint that asks for a secret); an account
    without a password leaves it out and needs a sign-in less than 10 minutes old. With
    `newPassword` and `confirmPassword`, sets a new strong password: every other session ends
    and this browser gets a new session cookie. With `twoFactorEnabled: true`, turns two-factor
    on and returns the TOTP secret, its otpauth URI and eight backup codes, shown only this
    once; with `false` (and a current `twoFactorCode`), turns it off. Turning two-factor on or
    off ends every other session.
    """
    change = accounts.update_security(signed_in(), changes)
    if change.session_token is not None:
        return signing_in(change.result, change.session_token)
    return change.result
