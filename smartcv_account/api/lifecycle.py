"""Sessions, activity, the data export and account deletion (mounted at /api/account)."""

from flask import Blueprint, current_app
from flask_login import login_required

from ..extensions import limiter
from ..idempotency import IDEMPOTENCY_ERRORS, idempotent, session_caller
from ..openapi import Link, endpoint
from ..schemas.lifecycle import (
    account_delete_schema,
    activity_page_schema,
    activity_query_schema,
    export_schema,
    revoked_schema,
    sessions_schema,
)
from ..services import account_deletion, activity, lifecycle
from ..session_cookie import signed_in
from . import signing_out
from .account import user_key

bp = Blueprint("lifecycle", __name__)


@bp.get("/sessions")
@login_required
@endpoint(
    sessions_schema,
    links=(
        Link(
            "revoke_session",
            "Revoke the newest session listed.",
            parameters={"path.session_id": "$response.body#/data/0/id"},
        ),
    ),
)
def list_sessions():
    """List the user's live sessions, newest first.

    Needs a session. Changes nothing. Each live (not revoked, not expired) session with when and
    from where it was used; `current` marks the one making the request.
    """
    principal = signed_in()
    return lifecycle.list_sessions(principal, principal.session_id)


@bp.delete("/sessions/<session_id>")
@login_required
@endpoint(None, errors=("SESSION_NOT_FOUND",))
def revoke_session(session_id: str):
    """Revoke one session; revoking the current one signs this browser out.

    Needs a session. Signs out one of the user's sessions by id; SESSION_NOT_FOUND when no live
    session of the user has it. Revoking the current one also clears this browser's cookie.
    """
    principal = signed_in()
    if lifecycle.revoke_session(principal, session_id, principal.session_id):
        return signing_out()
    return None


@bp.delete("/sessions")
@login_required
@endpoint(revoked_schema)
def revoke_other_sessions():
    """Revoke every session of the user but this one.

    Needs a session. Signs out every other session of the user (other browsers and devices) and
    returns how many were ended; this one stays.
    """
    principal = signed_in()
    return {"revoked": lifecycle.revoke_other_sessions(principal, principal.session_id)}


@bp.get("/activity")
@login_required
@endpoint(activity_page_schema, query=activity_query_schema)
def list_activity(query):
    """Page through the account's activity, newest first.

    Needs a session. Changes nothing. Sign-ins, security changes, email and subscription events,
    newest first; pass `nextCursor` as `before` for older events.
    """
    return activity.page(signed_in().id, query["limit"], query.get("before"))


@bp.get("/export")
@login_required
@limiter.limit(lambda: current_app.config["RATELIMIT_EXPORT_PER_USER"], key_func=user_key)
@endpoint(export_schema, errors=("RATE_LIMITED",))
def export_data():
    """Return everything the service holds about the user, as one JSON document.

    Needs a session; rate limited. Returns the account, security settings (no secret), sessions,
    activity, subscriptions, invoices and API keys (no secret) in one document, and records the
    export in the activity log.
    """
    principal = signed_in()
    return lifecycle.export(principal, principal.session_id)


@bp.delete("")
@login_required
@idempotent(session_caller)
@endpoint(
    None,
    body=account_delete_schema,
    errors=(
        "INVALID_PASSWORD",
        "TWO_FACTOR_REQUIRED",
        "INVALID_TWO_FACTOR_CODE",
        "REAUTHENTICATION_REQUIRED",
        *IDEMPOTENCY_ERRORS,
    ),
)
def delete_account(fields):
    """Delete the account: cancel the paid subscription, end every session, erase the data.

    Needs a session, the current password and, when two-factor is on, a current code. Cancels a
    paid subscription at once, ends every session, erases personal data (invoices the law
    requires are kept without it) and emails a goodbye notice. Honours `Idempotency-Key`. Cannot
    be undone.
    """
    account_deletion.delete_account(
        signed_in(), fields.get("current_password"), fields.get("two_factor_code")
    )
    return signing_out()
