"""Sign-up, sign-in and sign-out."""

from flask import Blueprint, current_app, request, session
from flask_login import current_user, login_required, login_user, logout_user

from ..extensions import limiter
from ..schemas.account import account_schema, login_schema, register_schema
from ..schemas.base import load_body
from ..services import accounts
from . import ok

bp = Blueprint("auth", __name__)


def _email_key() -> str:
    """Rate-limit key: the normalised email of the request body."""
    data = request.get_json(silent=True)
    email = data.get("email") if isinstance(data, dict) else None
    return "email:" + (accounts.normalise_email(email) if isinstance(email, str) else "")


def _limit(name: str) -> str:
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
    return ok(account_schema.dump(accounts.account_view(user)), 201)


@bp.post("/login")
@limiter.limit(lambda: _limit("RATELIMIT_LOGIN_PER_ADDRESS"))
@limiter.limit(
    lambda: _limit("RATELIMIT_LOGIN_FAILURES_PER_EMAIL"),
    key_func=_email_key,
    deduct_when=lambda response: response.status_code == 401,
)
def login():
    """Sign in with email, password and, when enabled, the second factor."""
    fields = load_body(login_schema)
    user = accounts.login(fields["email"], fields["password"], fields.get("two_factor_code"))
    _start(user)
    return ok(account_schema.dump(accounts.account_view(user)))


@bp.post("/logout")
@login_required
def logout():
    """End this session; the user's other sessions stay."""
    accounts.logout(current_user._get_current_object())
    logout_user()
    session.clear()
    return ok()
