"""Accounts: sign-up, sign-in and sign-out, the profile and the security settings."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy.exc import IntegrityError

from .. import clock
from ..errors import ApiError, field_error
from ..extensions import db
from ..models import User
from ..principal import Principal
from . import activity, credentials, guessing, notices, reauth, sessions, tokens, ways_in
from .account_view import AccountView, account_view
from .identity import normalise_email
from .locking import lock_user, lock_user_where
from .recovery import send_verification_link
from .second_factor import (
    accept_second_factor,
    disable_two_factor,
    enable_two_factor,
    invalid_two_factor_code,
    two_factor_required,
)
from .ways_in import SignIn


@dataclass(frozen=True, slots=True)
class SecurityChange:
    """What a security change reports, and the new session token after a password change."""

    result: dict[str, Any]
    session_token: str | None


def register(email: str, password: str, name: str) -> SignIn:
    """Create an account and start its first session."""
    email = normalise_email(email)
    credentials.require_strong(password, "password", credentials.personal_words(email, name))
    user = ways_in.new_user(email, name, credentials.hash_password(password))
    try:
        db.session.flush()
    except IntegrityError:
        db.session.rollback()
        raise field_error(
            "EMAIL_TAKEN", "An account with this email already exists.", "email"
        ) from None
    send_verification_link(user)
    return ways_in.start(user, new=True)


def _invalid_credentials() -> ApiError:
    """The one answer for an unknown email and a wrong password."""
    return ApiError("INVALID_CREDENTIALS", "The email or password is incorrect.")


def login(
    email: str, password: str, two_factor_code: str | None, replaces: str | None = None
) -> SignIn:
    """Check the credentials (password first, then the second factor) and start a session.

    `replaces` is the token of the session the browser held before: signing in again ends it,
    so a copy of the old cookie is worth nothing.
    """
    user = lock_user_where(User.email == normalise_email(email))
    if user is None:
        db.session.rollback()  # let other writers in while the dummy check burns its time
        credentials.burn_password_check(password)
        raise _invalid_credentials()
    if user.password_hash is None:
        # An account made by social sign-in has no password to guess: as an unknown email.
        db.session.rollback()
        credentials.burn_password_check(password)
        raise _invalid_credentials()
    guessing.reserve(user)
    if not credentials.check_password(password, user.password_hash):
        guessing.refuse(user, "login_failed", {"reason": "password"}, _invalid_credentials())
    if user.two_factor_enabled:
        if not two_factor_code:
            guessing.accept(user)  # the password was right: this is the first of two steps
            raise two_factor_required()
        if not accept_second_factor(user, two_factor_code):
            guessing.refuse(
                user, "login_failed", {"reason": "twoFactorCode"}, invalid_two_factor_code()
            )
    guessing.accept(user)
    if credentials.needs_rehash(user.password_hash):
        # A changed BCRYPT_ROUNDS reaches every account at its next login, so no account's
        # login time gives away how old its hash is.
        user.password_hash = credentials.hash_password(password)
    return ways_in.finish_sign_in(user, "password", replaces)


def logout(token: str) -> None:
    """Revoke the session of this token and record it; the user's other sessions stay."""
    user_id = sessions.revoke_session(token)
    if user_id is not None:
        activity.record(user_id, "logout")


def update_account(principal: Principal, changes: dict[str, Any]) -> AccountView:
    """Apply a partial update; preferences merge key by key."""
    values = {name: changes[name] for name in ("name", "avatar") if name in changes}
    values.update(changes.get("preferences", {}))
    if changes:
        values["updated_at"] = clock.now()
    user = lock_user(principal, values)
    return account_view(Principal.of(user, principal.session_token))


def update_security(principal: Principal, changes: dict[str, Any]) -> SecurityChange:
    """Change the password and/or the second factor, after checking the current password.

    A password change ends every session of the user, this one included, and starts a new
    session for this browser: a copy of the old cookie is then worth nothing.
    """
    user = lock_user(principal)
    new_token = None
    wanted = changes.get("two_factor_enabled")
    reauth.confirm_owner(
        user,
        principal,
        "security_change",
        password=changes.get("current_password"),
        second_factor=wanted is False,
        two_factor_code=changes.get("two_factor_code"),
    )
    result: dict[str, Any] = {"password_updated": False}
    new_password = changes.get("new_password")
    if new_password is not None:
        credentials.require_strong(
            new_password, "newPassword", credentials.personal_words(user.email, user.name)
        )
        user.password_hash = credentials.hash_password(new_password)
        user.updated_at = clock.now()
        # A login that checked the old password before this commits inserts its session after
        # the revocation below; the bumped version (in SQL, so concurrent changes each count)
        # leaves such a session dead on arrival.
        user.credential_version = User.credential_version + 1
        db.session.flush()
        sessions.revoke_user_sessions(user)
        # Reads the bumped version back: the new session is minted under it.
        new_token = sessions.start_session(user)
        tokens.void_all(user)  # no link sent before (a reset, an email change) outlives it
        notices.password_changed(user)
        result["password_updated"] = True
        activity.record(user.id, "password_changed")
    two_factor_before = user.two_factor_enabled
    if wanted is True and not user.two_factor_enabled:
        result.update(enable_two_factor(user))
        activity.record(user.id, "two_factor_enabled")
        notices.two_factor_enabled(user)
    elif wanted is False and user.two_factor_enabled:
        disable_two_factor(user)
        activity.record(user.id, "two_factor_disabled")
        notices.two_factor_disabled(user)
    if user.two_factor_enabled != two_factor_before and not result["password_updated"]:
        # A session signed in under the other setting must sign in again under this one.
        sessions.revoke_user_sessions(user, keep_token=principal.session_token)
    # Asking for the state 2FA is already in changes nothing, updatedAt included. A new
    # password set updatedAt before its flush; setting it again would be a second UPDATE.
    if user.two_factor_enabled != two_factor_before:
        user.updated_at = clock.now()
    result["two_factor_enabled"] = user.two_factor_enabled
    return SecurityChange(result, new_token)
