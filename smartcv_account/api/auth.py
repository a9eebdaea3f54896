"""Sign-up, sign-in and sign-out."""

import hashlib

from flask import Blueprint, current_app, request, session
from flask_login import current_user, login_user, logout_user

from ..extensions import limiter
from ..schemas.account import dump_account, login_schema, register_schema
from ..schemas.base import load_body
from ..services import accounts
from . import ok

bp = Blueprint("auth", __name__)


def _email_key() -> str:
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


def _start(user) -> None:
    """Put the new session in a fresh cookie: nothing from before login survives."""
    session.clear()
    session.permanent = True
    login_user(user)


@bp.post("/register")
@limiter.limit(lambda: _limit("RATELIMIT_REGISTER_PER_ADDRESS"))
@limiter.limit(lambda: _limit("RATELIMIT_REGISTER_PER_EMAIL"), key_func=_email_key)
def register():
    """Create an account and sign in."""
    fields = load_body(register_schema)
    user = accounts.register(fields["email"], fields["password"], fields["name"])
    _start(user)
    return ok(dump_account(accounts.account_view(user)), 201)


@bp.post("/login")
@limiter.limit(lambda: _limit("RATELIMIT_LOGIN_PER_ADDRESS"))
@limiter.limit(
    lambda: _limit("RATELIMIT_LOGIN_FAILURES_PER_EMAIL"),
    key_func=_email_key,
    deduct_when=_failed_sign_in,
)
def login():
    """Sign in with email, password and, when enabled, the second factor."""
    fields = load_body(login_schema)
    previous = current_user.session_token if current_user.is_authenticated else None
    user = accounts.login(
        fields["email"], fields["password"], fields.get("two_factor_code"), replaces=previous
    )
    _start(user)
    return ok(dump_account(accounts.account_view(user)))


@bp.post("/logout")
def logout():
    """End this session; the user's other sessions stay."""
    # Idempotent (the contract lists no error): an expired or revoked cookie still logs out.
    if current_user.is_authenticated:
        accounts.logout(current_user._get_current_object())
    logout_user()
    session.clear()
    return ok()
