"""Sign-up, sign-in and sign-out."""

import hashlib

from flask import Blueprint, current_app, request

from ..extensions import limiter
from ..openapi import Link, endpoint
from ..schemas.account import account_schema, login_schema, register_schema
from ..services import accounts
from ..session_cookie import cookie_token
from . import signing_in, signing_out

bp = Blueprint("auth", __name__)


def email_key() -> str:
    """Rate-limit key: a digest of the normalised email of the request body."""
    try:
        data = request.get_json(silent=True)
    except RecursionError:  # absurdly nested JSON: load_body answers it with INVALID_JSON
        data = None
    email = data.get("email") if isinstance(data, dict) else None
    if not isinstance(email, str):
        return "email:"
    # A digest keeps addresses out of the limiter's storage (Redis) and survives any
    # character the body may hold (lone surrogates cannot be encoded as a Redis key).
    normalised = accounts.normalise_email(email).encode("utf-8", "surrogatepass")
    return "email:" + hashlib.sha256(normalised).hexdigest()


def _failed_sign_in(response) -> bool:
    """Tell whether a login response counts toward the per-email failure limit.

    TWO_FACTOR_REQUIRED is the first step of a correct sign-in (the password was right), so
    it is not a failure; a wrong password or a wrong code is.
    """
    if response.status_code != 401:
        return False
    body = response.get_json(silent=True)
    return not (isinstance(body, dict) and body.get("code") == "TWO_FACTOR_REQUIRED")


def _limit(name: str) -> str:
    """Return a rate-limit string from the configuration."""
    return current_app.config[name]


@bp.post("/register")
@limiter.limit(lambda: _limit("RATELIMIT_REGISTER_PER_ADDRESS"))
@limiter.limit(lambda: _limit("RATELIMIT_REGISTER_PER_EMAIL"), key_func=email_key)
@endpoint(
    account_schema,
    body=register_schema,
    status=201,
    errors=("EMAIL_TAKEN", "WEAK_PASSWORD", "RATE_LIMITED"),
    security=None,
    links=(
        Link("get_account", "Read the new account with the session this answer starts."),
        Link(
            "record_usage",
            "Record the new user's usage (internal API).",
            parameters={"path.user_id": "$response.body#/data/id"},
        ),
    ),
)
def register(fields):
    """Create an account and sign in.

    Anyone may call it; rate limited per client address and per email. Creates the account on
    the free plan (email trimmed and normalised, password checked for strength and hashed) and
    signs in: the answer sets the session cookie. A verification link is emailed. Returns the
    new account.
    """
    sign_in = accounts.register(fields["email"], fields["password"], fields["name"])
    return signing_in(sign_in.account, sign_in.token)


@bp.post("/login")
@limiter.limit(lambda: _limit("RATELIMIT_LOGIN_PER_ADDRESS"))
@limiter.limit(
    lambda: _limit("RATELIMIT_LOGIN_FAILURES_PER_EMAIL"),
    key_func=email_key,
    deduct_when=_failed_sign_in,
)
@endpoint(
    account_schema,
    body=login_schema,
    errors=(
        "INVALID_CREDENTIALS",
        "TWO_FACTOR_REQUIRED",
        "INVALID_TWO_FACTOR_CODE",
        "RATE_LIMITED",
    ),
    security=None,
)
def login(fields):
    """Sign in with email, password and, when enabled, the second factor.

    Anyone may call it; failures are rate limited per client address and per email. The password
    is checked first: a wrong one is always INVALID_CREDENTIALS. With two-factor on, send
    `twoFactorCode` (a TOTP code, or an unused backup code, which is then spent); without it the
    answer is TWO_FACTOR_REQUIRED. Success starts a fresh session (the cookie is set) and
    returns the account.
    """
    # The browser's previous session (if any) ends: nothing from before login survives.
    sign_in = accounts.login(
        fields["email"], fields["password"], fields.get("two_factor_code"), cookie_token()
    )
    return signing_in(sign_in.account, sign_in.token)


@bp.post("/logout")
@endpoint(security=None)
def logout():
    """End this session; the user's other sessions stay.

    Anyone may call it; without a session it does nothing. Revokes this browser's session and
    clears the cookie; the user's sessions elsewhere stay signed in.
    """
    # Idempotent (the contract lists no error): an expired or revoked cookie still logs out.
    token = cookie_token()
    if token is not None:
        accounts.logout(token)
    return signing_out()
