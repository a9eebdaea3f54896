"""Endpoints for other SmartCV services, authenticated by the shared INTERNAL_API_TOKEN."""

from __future__ import annotations

import hmac

from flask import Blueprint, current_app, request

from ..errors import ApiError
from ..idempotency import IDEMPOTENCY_ERRORS, idempotent, token_caller
from ..openapi import endpoint
from ..schemas.api_keys import verified_schema, verify_schema
from ..schemas.teams import internal_role_schema, internal_team_schema
from ..schemas.usage import usage_change_schema, usage_schema
from ..services import key_check, usage
from ..services.teams import lookups

bp = Blueprint("internal", __name__)


@bp.before_request
def require_internal_token() -> None:
    """Admit only callers presenting `Authorization: Bearer <INTERNAL_API_TOKEN>`."""
    expected = current_app.config.get("INTERNAL_API_TOKEN") or ""
    if not expected:
        # Without a configured token there is nothing to check against: shut the door.
        raise ApiError("FORBIDDEN", "The internal API is not enabled on this server.")
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    # Bytes, because compare_digest refuses non-ASCII str (a crafted header would be a 500).
    if scheme.lower() != "bearer" or not hmac.compare_digest(
        token.strip().encode(), expected.encode()
    ):
        raise ApiError(
            "UNAUTHORIZED",
            "A valid internal API token is required.",
            headers={"WWW-Authenticate": 'Bearer realm="smartcv-internal"'},
        )


@bp.post("/users/<user_id>/usage")
@idempotent(token_caller)
@endpoint(
    usage_schema,
    body=usage_change_schema,
    errors=("USER_NOT_FOUND", "SUBSCRIPTION_LIMIT_EXCEEDED", *IDEMPOTENCY_ERRORS),
    security="internal",
)
def record_usage(change, user_id: str):
    """Record a change to one of a user's usage counters, within the plan's limits.

    For other SmartCV services only, with `Authorization: Bearer <INTERNAL_API_TOKEN>`. Adds
    `delta` to one counter of the user atomically; a change that would pass the plan's limit is
    refused with SUBSCRIPTION_LIMIT_EXCEEDED (naming the plan that lifts it) and changes
    nothing. Honours `Idempotency-Key`. Returns the usage after the change.
    """
    return usage.record_usage(user_id, change["metric"], change["delta"])


@bp.post("/api-keys/verify")
@endpoint(
    verified_schema,
    body=verify_schema,
    errors=("INVALID_API_KEY", "INSUFFICIENT_SCOPE", "SUBSCRIPTION_LIMIT_EXCEEDED"),
    security="internal",
)
def verify_api_key(fields):
    """Check an API key and its scope, and count the call against the plan's monthly limit.

    For other SmartCV services only, with `Authorization: Bearer <INTERNAL_API_TOKEN>`. An
    unknown, malformed, revoked or expired key is INVALID_API_KEY (`details.reason`); a key
    without `scope` is INSUFFICIENT_SCOPE; a call past the plan's monthly API requests is
    SUBSCRIPTION_LIMIT_EXCEEDED. With `count` (the default) the call is recorded in the same
    step, atomically, and `usage.apiRequestsUsed` includes it; a refused call is never counted.
    """
    return key_check.verify(fields["key"], fields.get("scope"), fields["count"])


@bp.get("/teams/<team_id>")
@endpoint(internal_team_schema, errors=("TEAM_NOT_FOUND",), security="internal")
def lookup_team(team_id: str):
    """Return a team's name, branding, plan type and seats.

    For other SmartCV services only, with `Authorization: Bearer <INTERNAL_API_TOKEN>`. They
    apply the branding for ENTERPRISE teams. Changes nothing.
    """
    return lookups.team(team_id)


@bp.get("/teams/<team_id>/members/<user_id>")
@endpoint(internal_role_schema, errors=("TEAM_NOT_FOUND", "NOT_A_MEMBER"), security="internal")
def lookup_team_member(team_id: str, user_id: str):
    """Return a user's role in a team, or NOT_A_MEMBER.

    For other SmartCV services only, with `Authorization: Bearer <INTERNAL_API_TOKEN>`.
    Changes nothing.
    """
    return lookups.role(team_id, user_id)
