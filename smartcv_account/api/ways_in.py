"""The account's passkeys and linked identities (mounted at /api/account)."""

from __future__ import annotations

from flask import Blueprint
from flask_login import login_required

from ..openapi import endpoint
from ..schemas.signin import (
    WEBAUTHN_OPTIONS,
    identities_schema,
    passkey_create_schema,
    passkey_options_schema,
    passkey_rename_schema,
    passkey_schema,
    passkeys_schema,
)
from ..services import passkeys, social_sign_in
from ..session_cookie import signed_in

bp = Blueprint("ways_in", __name__)


@bp.post("/passkeys/options")
@login_required
@endpoint(
    WEBAUTHN_OPTIONS,
    body=passkey_options_schema,
    errors=("INVALID_PASSWORD", "REAUTHENTICATION_REQUIRED", "RATE_LIMITED"),
)
def passkey_options(fields):
    """Start adding a passkey: the WebAuthn creation options.

    Needs a session and `currentPassword` (counted by the guessing limit); an account without a
    password leaves it out and needs a sign-in less than 10 minutes old. Returns `publicKey` for
    `navigator.credentials.create()`: a single-use challenge valid 5 minutes, resident key and
    user verification required, the account's passkeys excluded, attestation `none`.
    """
    return passkeys.registration_options(signed_in(), fields.get("current_password"))


@bp.post("/passkeys")
@login_required
@endpoint(passkey_schema, body=passkey_create_schema, status=201, errors=("INVALID_PASSKEY",))
def add_passkey(fields):
    """Add a passkey from the browser's registration response.

    Needs a session and a challenge from POST /api/account/passkeys/options. Send a `name` and
    the browser's `credential` as JSON. A bad, replayed or duplicate response is
    INVALID_PASSKEY with `details.reason`. Sends a security notice.
    """
    return passkeys.register(signed_in(), fields["name"], fields["credential"])


@bp.get("/passkeys")
@login_required
@endpoint(passkeys_schema)
def list_passkeys():
    """List the account's passkeys, oldest first.

    Needs a session. Changes nothing.
    """
    return passkeys.list_passkeys(signed_in())


@bp.put("/passkeys/<passkey_id>")
@login_required
@endpoint(passkey_schema, body=passkey_rename_schema, errors=("NOT_FOUND",))
def rename_passkey(fields, passkey_id: str):
    """Rename one of the account's passkeys.

    Needs a session. Returns the passkey.
    """
    return passkeys.rename(signed_in(), passkey_id, fields["name"])


@bp.delete("/passkeys/<passkey_id>")
@login_required
@endpoint(None, errors=("NOT_FOUND", "LAST_SIGN_IN_METHOD"))
def remove_passkey(passkey_id: str):
    """Remove one of the account's passkeys.

    Needs a session. An account without a password cannot remove its last way in
    (LAST_SIGN_IN_METHOD). Sends a security notice.
    """
    passkeys.remove(signed_in(), passkey_id)


@bp.get("/identities")
@login_required
@endpoint(identities_schema)
def list_identities():
    """List the accounts at identity providers linked to this one.

    Needs a session. Changes nothing. Link one with GET /api/auth/oidc/<name>/start?link=true.
    """
    return social_sign_in.list_identities(signed_in())


@bp.delete("/identities/<identity_id>")
@login_required
@endpoint(None, errors=("NOT_FOUND", "LAST_SIGN_IN_METHOD"))
def unlink_identity(identity_id: str):
    """Unlink an account at an identity provider.

    Needs a session. An account without a password cannot remove its last way in
    (LAST_SIGN_IN_METHOD). Sends a security notice.
    """
    social_sign_in.unlink(signed_in(), identity_id)
