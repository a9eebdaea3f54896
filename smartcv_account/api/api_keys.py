"""The user's personal API keys (mounted at /api/account/api-keys)."""

from flask import Blueprint
from flask_login import login_required

from ..openapi import Link, endpoint
from ..schemas.api_keys import api_key_create_schema, api_keys_schema, new_api_key_schema
from ..services import api_keys
from ..session_cookie import signed_in

bp = Blueprint("api_keys", __name__)


@bp.post("")
@login_required
@endpoint(
    new_api_key_schema,
    body=api_key_create_schema,
    status=201,
    errors=("INVALID_PASSWORD", "EMAIL_NOT_VERIFIED", "API_KEY_LIMIT_REACHED", "RATE_LIMITED"),
    links=(
        Link(
            "revoke_api_key",
            "Revoke the key just made.",
            parameters={"path.key_id": "$response.body#/data/id"},
        ),
    ),
)
def create_api_key(fields):
    """Make an API key; its secret is in this answer and nowhere else, ever.

    Needs a session, a verified email and the current password (a wrong one counts toward the
    account's guessing limit). At most 10 live keys per user. The key has the scopes asked for
    and expires after `expiresInDays`. Only a hash of the secret is stored: keep it now. The
    owner gets a security notice by email.
    """
    return api_keys.create_key(
        signed_in(),
        fields["name"],
        fields["scopes"],
        fields["expires_in_days"],
        fields.get("current_password"),
    )


@bp.get("")
@login_required
@endpoint(api_keys_schema)
def list_api_keys():
    """List the user's live API keys, newest first (never their secrets).

    Needs a session. Changes nothing. `lastUsedAt` may be up to 60 seconds behind.
    """
    return api_keys.list_keys(signed_in())


@bp.delete("/<key_id>")
@login_required
@endpoint(None, errors=("API_KEY_NOT_FOUND",))
def revoke_api_key(key_id: str):
    """Revoke one API key: it stops working at once, on every instance.

    Needs a session. API_KEY_NOT_FOUND when the user has no live key with this id.
    """
    api_keys.revoke_key(signed_in(), key_id)
