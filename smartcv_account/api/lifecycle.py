"""Sessions, activity, the data export and account deletion (mounted at /api/account)."""

from flask import Blueprint, current_app, request, session
from flask_login import current_user, login_required, logout_user

from ..extensions import limiter
from ..idempotency import idempotent, session_caller
from ..schemas.base import load_body
from ..schemas.lifecycle import (
    account_delete_schema,
    activity_page_schema,
    activity_query_schema,
    export_schema,
    revoked_schema,
    sessions_schema,
)
from ..services import account_deletion, activity, lifecycle
from . import ok

bp = Blueprint("lifecycle", __name__)


def _signed_in():
    """The signed-in user and the id of the session this request came with."""
    user = current_user._get_current_object()
    return user, user.session_id


def _sign_out() -> None:
    """Forget the session in this browser (its record was revoked or erased)."""
    logout_user()
    session.clear()


@bp.get("/sessions")
@login_required
def list_sessions():
    """List the user's live sessions, newest first."""
    return ok(sessions_schema.dump(lifecycle.list_sessions(*_signed_in())))


@bp.delete("/sessions/<session_id>")
@login_required
def revoke_session(session_id: str):
    """Revoke one session; revoking the current one signs this browser out."""
    user, current = _signed_in()
    if lifecycle.revoke_session(user, session_id, current):
        _sign_out()
    return ok()


@bp.delete("/sessions")
@login_required
def revoke_other_sessions():
    """Revoke every session of the user but this one."""
    count = lifecycle.revoke_other_sessions(*_signed_in())
    return ok(revoked_schema.dump({"revoked": count}))


@bp.get("/activity")
@login_required
def list_activity():
    """Page through the account's activity, newest first."""
    query = activity_query_schema.load(request.args.to_dict())
    found = activity.page(current_user.id, query["limit"], query.get("before"))
    return ok(activity_page_schema.dump(found))


def _user_key() -> str:
    """Rate-limit key: the signed-in user."""
    return "export:" + getattr(current_user, "public_id", "anonymous")


@bp.get("/export")
@login_required
@limiter.limit(lambda: current_app.config["RATELIMIT_EXPORT_PER_USER"], key_func=_user_key)
def export_data():
    """Return everything the service holds about the user, as one JSON document."""
    return ok(export_schema.dump(lifecycle.export(*_signed_in())))


@bp.delete("")
@login_required
@idempotent(session_caller)
def delete_account():
    """Delete the account: cancel the paid subscription, end every session, erase the data."""
    fields = load_body(account_delete_schema)
    account_deletion.delete_account(
        current_user._get_current_object(),
        fields["current_password"],
        fields.get("two_factor_code"),
    )
    _sign_out()
    return ok()
