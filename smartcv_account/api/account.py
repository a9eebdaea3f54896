"""The account and its security settings."""

from flask import Blueprint, current_app
from flask_login import current_user, login_required

from ..extensions import limiter
from ..idempotency import answer_then_commit
from ..schemas.account import (
    account_update_schema,
    dump_account,
    security_result_schema,
    security_update_schema,
)
from ..schemas.base import load_body
from ..services import accounts
from . import ok

bp = Blueprint("account", __name__)
GUESSES = ("INVALID_PASSWORD", "INVALID_TWO_FACTOR_CODE")


@bp.get("")
@login_required
def get_account():
    """Return the signed-in user's account."""
    user = current_user._get_current_object()
    return ok(dump_account(accounts.account_view(user)))


@bp.put("")
@login_required
@answer_then_commit
def update_account():
    """Update name, avatar and preferences (only the fields sent)."""
    changes = load_body(account_update_schema)
    user = accounts.update_account(current_user._get_current_object(), changes)
    return ok(dump_account(accounts.account_view(user)))


def _user_key() -> str:
    """Rate-limit key: the signed-in user (the endpoint needs a session anyway)."""
    return "user:" + getattr(current_user, "public_id", "anonymous")


def _wrong_current_password(response) -> bool:
    """Count only refusals of the current password or code toward the guessing limit."""
    body = response.get_json(silent=True)
    return isinstance(body, dict) and body.get("code") in GUESSES


@bp.put("/security")
@login_required
@limiter.limit(
    lambda: current_app.config["RATELIMIT_SECURITY_FAILURES_PER_USER"],
    key_func=_user_key,
    deduct_when=_wrong_current_password,
)
def update_security():
    """Change the password and/or turn two-factor authentication on or off."""
    changes = load_body(security_update_schema)
    result = accounts.update_security(current_user._get_current_object(), changes)
    return ok(security_result_schema.dump(result), message="Security settings updated successfully")
