"""What a verified OpenID Connect sign-in does: sign in, create an account, or link.

An identity is an issuer and a subject. One already linked signs its user in. An unknown one
whose provider vouches for the email, when no account has that email, makes a new account
(email verified, no password). An email that belongs to an account is never linked silently:
the person signs in and links from the settings (`link`). When the account has two-factor on,
no session starts: a signed cookie remembers the first step for `PENDING_LIFETIME_SECONDS`,
and `complete_second_factor` finishes it with a code, counted by the guessing limit. The
cookie names a one-use challenge kept on the server (services/challenges.py), spent by the
sign-in it finishes, so a copy of the cookie cannot start a second session with a later code.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from datetime import timedelta
from urllib.parse import urlencode

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from .. import clock
from ..errors import ApiError
from ..extensions import db
from ..models import LinkedIdentity, User
from ..principal import Principal
from . import activity, challenges, guessing, notices, oidc, ways_in
from .identity import new_public_id, normalise_email
from .locking import lock_user, lock_user_where
from .oidc import Claims, Provider, SignInFailed

PENDING_COOKIE = "smartcv_second_factor"
PENDING_COOKIE_PATH = "/api/auth/login/second-factor"
PENDING_LIFETIME_SECONDS = 300
PENDING_SALT = "smartcv-second-factor"
PENDING_PURPOSE = "second_factor"  # its challenge's purpose


@dataclass(frozen=True, slots=True)
class Outcome:
    """A callback's result: the front end's path to go to, and a session started or a second
    factor still to give (the signed cookie of the sign-in waiting for it)."""

    target: str
    sign_in: ways_in.SignIn | None = None
    pending: str | None = None


def callback(
    chosen: Provider,
    redirect_uri: str,
    query: dict[str, str],
    state_cookie: str | None,
    principal: Principal | None,
    replaces: str | None,
) -> Outcome:
    """Finish the flow this browser started: sign in, make the account or link; on any
    failure nothing is kept and the front end's sign-in page is told why."""
    try:
        attempt = oidc.read_state(state_cookie, chosen, query.get("state"))
        if query.get("error"):
            raise SignInFailed("denied")
        claims = oidc.finish(chosen, redirect_uri, query.get("code"), attempt)
        if attempt.get("l"):
            link(principal, attempt["l"], chosen, claims)
            return Outcome(attempt["r"])
        return sign_in(chosen, claims, replaces, attempt["r"])
    except SignInFailed as failure:
        db.session.rollback()
        return Outcome("/signin?" + urlencode({"error": failure.reason}))


def _identity(chosen: Provider, claims: Claims) -> LinkedIdentity | None:
    return db.session.scalar(
        sa.select(LinkedIdentity).where(
            LinkedIdentity.issuer == chosen.issuer, LinkedIdentity.subject == claims.subject
        )
    )


def _add_identity(user: User, chosen: Provider, claims: Claims) -> LinkedIdentity:
    identity = LinkedIdentity(
        public_id=new_public_id("idn"),
        user_id=user.id,
        provider=chosen.name,
        issuer=chosen.issuer,
        subject=claims.subject,
        email=normalise_email(claims.email) if claims.email else None,
        created_at=clock.now(),
    )
    db.session.add(identity)
    try:
        db.session.flush()
    except IntegrityError:
        db.session.rollback()
        raise SignInFailed("identity_in_use") from None
    activity.record(
        user.id, "identity_linked", {"identityId": identity.public_id, "provider": chosen.name}
    )
    notices.identity_linked(user, chosen.display_name)
    return identity


def link(principal: Principal | None, link_user: str, chosen: Provider, claims: Claims) -> None:
    """Link the identity to the signed-in account that started the link."""
    if principal is None or principal.public_id != link_user:
        raise SignInFailed("link_session")
    user = lock_user(principal)
    found = _identity(chosen, claims)
    if found is not None:
        if found.user_id != user.id:
            raise SignInFailed("identity_in_use")
        return
    _add_identity(user, chosen, claims)


def sign_in(chosen: Provider, claims: Claims, replaces: str | None, return_to: str) -> Outcome:
    """Sign the identity's user in, or make an account for a new identity."""
    method = f"oidc:{chosen.name}"
    found = _identity(chosen, claims)
    if found is None:
        user = _new_account(chosen, claims)
    else:
        user = lock_user_where(User.id == found.user_id)
        if user is None:
            raise SignInFailed("account_deleted")
    if user.two_factor_enabled:
        lifetime = timedelta(seconds=PENDING_LIFETIME_SECONDS)
        challenge = challenges.issue(PENDING_PURPOSE, user.id, lifetime)
        waiting = {
            "u": user.public_id,
            "c": user.credential_version,
            "m": method,
            "n": base64.urlsafe_b64encode(challenge).decode(),
        }
        pending = oidc.sign(PENDING_SALT, waiting)
        target = "/signin?" + urlencode({"twoFactor": "required", "returnTo": return_to})
        return Outcome(target, pending=pending)
    return Outcome(return_to, sign_in=ways_in.finish_sign_in(user, method, replaces))


def _new_account(chosen: Provider, claims: Claims) -> User:
    """An account for a new identity whose provider verified an email no account has."""
    if not claims.email or not claims.email_verified:
        raise SignInFailed("email_not_verified")
    email = normalise_email(claims.email)
    if db.session.scalar(sa.select(User.id).where(User.email == email)) is not None:
        raise SignInFailed("account_exists")
    name = (claims.name or email.partition("@")[0]).strip()[:100]
    user = ways_in.new_user(email, name, None, email_verified_at=clock.now())
    try:
        db.session.flush()
    except IntegrityError:
        db.session.rollback()  # the address was taken meanwhile
        raise SignInFailed("account_exists") from None
    _add_identity(user, chosen, claims)
    return user


def complete_second_factor(
    pending: str | None, two_factor_code: str, replaces: str | None
) -> ways_in.SignIn:
    """Finish a social sign-in of a two-factor account with its code."""
    waiting = oidc.unsign(PENDING_SALT, pending, PENDING_LIFETIME_SECONDS) or {}
    user = challenge = None
    if {"u", "c", "m", "n"} <= waiting.keys():
        challenge = _challenge_of(waiting["n"])
        user = lock_user_where(
            User.public_id == waiting["u"], User.credential_version == waiting["c"]
        )
    # Under the user's row lock: a step already finished (its challenge spent) is not
    # waiting, and asks for no code.
    if (
        user is None
        or challenge is None
        or not user.two_factor_enabled
        or not challenges.is_live(challenge, PENDING_PURPOSE, user.id)
    ):
        raise ApiError("UNAUTHORIZED", "No sign-in is waiting for a second factor; sign in again.")
    guessing.confirm_secrets(
        user, "social_sign_in", second_factor=True, two_factor_code=two_factor_code
    )
    challenges.take(challenge, PENDING_PURPOSE, user.id)
    return ways_in.finish_sign_in(user, waiting["m"], replaces)


def _challenge_of(encoded: object) -> bytes | None:
    """The challenge a pending cookie names (None for anything else)."""
    if not isinstance(encoded, str):
        return None
    try:
        return base64.urlsafe_b64decode(encoded.encode())
    except (binascii.Error, ValueError):
        return None


def list_identities(principal: Principal) -> list[LinkedIdentity]:
    """The identities linked to the signed-in account, oldest first."""
    return list(
        db.session.scalars(
            sa.select(LinkedIdentity)
            .where(LinkedIdentity.user_id == principal.id)
            .order_by(LinkedIdentity.created_at, LinkedIdentity.id)
        )
    )


def unlink(principal: Principal, public_id: str) -> None:
    """Unlink one identity, unless it is the account's only way in."""
    user = lock_user(principal)
    identity = db.session.scalar(
        sa.select(LinkedIdentity).where(
            LinkedIdentity.user_id == user.id, LinkedIdentity.public_id == public_id
        )
    )
    if identity is None:
        raise ApiError("NOT_FOUND", "You have no linked identity with this id.", {"field": "id"})
    ways_in.keep_a_way_in(user)
    db.session.delete(identity)
    activity.record(
        user.id,
        "identity_unlinked",
        {"identityId": identity.public_id, "provider": identity.provider},
    )
    notices.identity_unlinked(user, identity.provider)
