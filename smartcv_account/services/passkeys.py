"""Passkeys (WebAuthn, with py_webauthn): adding one, listing and removing them, signing in.

Each ceremony starts with options holding a fresh challenge, kept (hashed) in
`webauthn_challenges` for `CHALLENGE_LIFETIME`; the browser's response carries the challenge
back in its clientDataJSON, and the response that finds it deletes it, so a challenge works
once. A sign-in that is refused keeps its challenge spent: the deletion is committed on its
own before the refusal, as the guessing limit commits a wrong answer.
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

import sqlalchemy as sa
from flask import current_app
from webauthn import (
    generate_authentication_options,
    generate_registration_options,
    verify_authentication_response,
    verify_registration_response,
)
from webauthn.helpers import base64url_to_bytes, bytes_to_base64url, options_to_json_dict
from webauthn.helpers.exceptions import WebAuthnException
from webauthn.helpers.structs import (
    AttestationConveyancePreference,
    AuthenticatorSelectionCriteria,
    PublicKeyCredentialDescriptor,
    ResidentKeyRequirement,
    UserVerificationRequirement,
)

from .. import clock
from ..errors import ApiError
from ..extensions import db
from ..models import Passkey, User
from ..principal import Principal
from . import activity, challenges, notices, reauth, ways_in
from .identity import new_public_id
from .locking import lock_user, lock_user_where

CHALLENGE_LIFETIME = timedelta(minutes=5)
# What py_webauthn raises for a malformed response, besides its own exceptions.
MALFORMED = (WebAuthnException, KeyError, TypeError, ValueError, AttributeError)


def relying_party() -> tuple[str, list[str]]:
    """The RP id and the allowed origins: WEBAUTHN_RP_ID and WEBAUTHN_ORIGINS, or by default
    APP_BASE_URL's host and origin."""
    config = current_app.config
    base = urlsplit(config["APP_BASE_URL"])
    rp_id = config["WEBAUTHN_RP_ID"] or base.hostname or "localhost"
    origins = [o.strip() for o in config["WEBAUTHN_ORIGINS"].split(",") if o.strip()]
    return rp_id, origins or [f"{base.scheme}://{base.netloc}"]


def _issue_challenge(purpose: str, user_id: int | None) -> bytes:
    """Make and keep a challenge for one ceremony (services/challenges.py)."""
    return challenges.issue(purpose, user_id, CHALLENGE_LIFETIME)


def _take_challenge(credential: dict[str, Any], purpose: str, user_id: int | None) -> bytes | None:
    """Delete the live challenge the response names; return it, or None if it is not one."""
    try:
        client_data = json.loads(base64url_to_bytes(credential["response"]["clientDataJSON"]))
        challenge = base64url_to_bytes(client_data["challenge"])
    except (*MALFORMED, json.JSONDecodeError):
        return None
    return challenge if challenges.take(challenge, purpose, user_id) else None


def _passkeys_of(user_id: int) -> list[Passkey]:
    """The user's passkeys, oldest first."""
    return list(
        db.session.scalars(
            sa.select(Passkey)
            .where(Passkey.user_id == user_id)
            .order_by(Passkey.created_at, Passkey.id)
        )
    )


def registration_options(principal: Principal, current_password: str | None) -> dict[str, Any]:
    """Confirm the owner, then return the creation options for a new passkey."""
    user = lock_user(principal)
    reauth.confirm_owner(user, principal, "passkey_registration", password=current_password)
    rp_id, _ = relying_party()
    options = generate_registration_options(
        rp_id=rp_id,
        rp_name=current_app.config["WEBAUTHN_RP_NAME"],
        user_name=user.email,
        user_id=user.public_id.encode("ascii"),
        user_display_name=user.name or user.email,
        challenge=_issue_challenge("register", user.id),
        timeout=int(CHALLENGE_LIFETIME.total_seconds() * 1000),
        attestation=AttestationConveyancePreference.NONE,
        authenticator_selection=AuthenticatorSelectionCriteria(
            resident_key=ResidentKeyRequirement.REQUIRED,
            user_verification=UserVerificationRequirement.REQUIRED,
        ),
        exclude_credentials=[
            PublicKeyCredentialDescriptor(id=base64url_to_bytes(p.credential_id))
            for p in _passkeys_of(user.id)
        ],
    )
    return {"publicKey": options_to_json_dict(options)}


def _invalid(reason: str) -> ApiError:
    """INVALID_PASSKEY with its reason."""
    return ApiError(
        "INVALID_PASSKEY",
        "The passkey could not be verified; try adding it again.",
        {"reason": reason},
    )


def register(principal: Principal, name: str, credential: dict[str, Any]) -> Passkey:
    """Verify the browser's registration response and keep the new passkey."""
    user = lock_user(principal)
    challenge = _take_challenge(credential, "register", user.id)
    if challenge is None:
        db.session.commit()  # the challenge stays spent
        raise _invalid("challenge")
    rp_id, origins = relying_party()
    try:
        verified = verify_registration_response(
            credential=credential,
            expected_challenge=challenge,
            expected_rp_id=rp_id,
            expected_origin=origins,
            require_user_verification=True,
        )
    except MALFORMED:
        db.session.commit()
        raise _invalid("credential") from None
    credential_id = bytes_to_base64url(verified.credential_id)
    if db.session.scalar(sa.select(Passkey.id).where(Passkey.credential_id == credential_id)):
        db.session.commit()
        raise _invalid("duplicate")
    now = clock.now()
    passkey = Passkey(
        public_id=new_public_id("pk"),
        user_id=user.id,
        credential_id=credential_id,
        public_key=verified.credential_public_key,
        sign_count=verified.sign_count,
        name=name,
        backed_up=verified.credential_backed_up,
        created_at=now,
        last_used_at=None,
    )
    db.session.add(passkey)
    activity.record(user.id, "passkey_added", {"passkeyId": passkey.public_id})
    notices.passkey_added(user, name)
    return passkey


def list_passkeys(principal: Principal) -> list[Passkey]:
    """The signed-in user's passkeys, oldest first."""
    return _passkeys_of(principal.id)


def _find(user: User, public_id: str) -> Passkey:
    """One of the user's passkeys by its public id, or NOT_FOUND."""
    passkey = db.session.scalar(
        sa.select(Passkey).where(Passkey.user_id == user.id, Passkey.public_id == public_id)
    )
    if passkey is None:
        raise ApiError("NOT_FOUND", "You have no passkey with this id.", {"field": "id"})
    return passkey


def rename(principal: Principal, public_id: str, name: str) -> Passkey:
    """Rename one of the user's passkeys."""
    passkey = _find(lock_user(principal), public_id)
    passkey.name = name
    return passkey


def remove(principal: Principal, public_id: str) -> None:
    """Remove one of the user's passkeys, unless it is the account's only way in."""
    user = lock_user(principal)
    passkey = _find(user, public_id)
    ways_in.keep_a_way_in(user)
    db.session.delete(passkey)
    activity.record(user.id, "passkey_removed", {"passkeyId": passkey.public_id})
    notices.passkey_removed(user, passkey.name)


def authentication_options() -> dict[str, Any]:
    """The request options of a sign-in with a discoverable passkey (no user named)."""
    rp_id, _ = relying_party()
    options = generate_authentication_options(
        rp_id=rp_id,
        challenge=_issue_challenge("authenticate", None),
        timeout=int(CHALLENGE_LIFETIME.total_seconds() * 1000),
        user_verification=UserVerificationRequirement.REQUIRED,
    )
    return {"publicKey": options_to_json_dict(options)}


def _refused(user: User | None) -> ApiError:
    """Keep the challenge spent and the refusal recorded (committed alone); the answer."""
    if user is not None:
        activity.record(user.id, "login_failed", {"reason": "passkey"})
    db.session.commit()
    return ApiError("INVALID_CREDENTIALS", "This passkey could not sign you in.")


def authenticate(credential: dict[str, Any], replaces: str | None) -> ways_in.SignIn:
    """Verify a sign-in with a passkey and start a session (no second factor is asked)."""
    credential_id = credential.get("rawId") or credential.get("id")
    found = None
    if isinstance(credential_id, str):
        found = db.session.scalar(
            sa.select(Passkey.user_id).where(Passkey.credential_id == credential_id)
        )
    # The user's row first, as every write; then the challenge and the passkey.
    user = lock_user_where(User.id == found) if found is not None else None
    challenge = _take_challenge(credential, "authenticate", None)
    passkey = None
    if user is not None:
        passkey = db.session.scalar(
            sa.select(Passkey).where(Passkey.credential_id == credential_id)
        )
    if challenge is None or passkey is None:
        raise _refused(user)
    rp_id, origins = relying_party()
    try:
        verified = verify_authentication_response(
            credential=credential,
            expected_challenge=challenge,
            expected_rp_id=rp_id,
            expected_origin=origins,
            credential_public_key=passkey.public_key,
            credential_current_sign_count=passkey.sign_count,
            require_user_verification=True,
        )
    except MALFORMED:
        raise _refused(user) from None
    passkey.sign_count = verified.new_sign_count
    passkey.backed_up = verified.credential_backed_up
    passkey.last_used_at = clock.now()
    return ways_in.finish_sign_in(user, "passkey", replaces)


def export(user_id: int) -> list[Passkey]:
    """The user's passkeys for the data export."""
    return _passkeys_of(user_id)
