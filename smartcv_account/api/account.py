"""The account and its security settings."""

from flask import Blueprint
from flask_login import current_user, login_required

from ..schemas.account import (
    account_schema,
    account_update_schema,
    security_result_schema,
    security_update_schema,
)
from ..schemas.base import load_body
from ..services import accounts
from . import ok

bp = Blueprint("account", __name__)


@bp.get("")
@login_required
def get_account():
    """Return the signed-in user's account."""
    user = current_user._get_current_object()
    return ok(account_schema.dump(accounts.account_view(user)))


@bp.put("")
@login_required
def update_account():
    """Update name, avatar and preferences (only the fields sent)."""
    changes = load_body(account_update_schema)
    user = accounts.update_account(current_user._get_current_object(), changes)
    return ok(account_schema.dump(accounts.account_view(user)))


@bp.put("/security")
@login_required
def update_security():
    """Change the password and/or turn two-factor authentication on or off."""
    changes = load_body(security_update_schema)
    result = accounts.update_security(current_user._get_current_object(), changes)
    return ok(security_result_schema.dump(result), message="Security settings updated successfully")
