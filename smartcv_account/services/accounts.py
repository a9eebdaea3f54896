"""Accounts: sign-up, sign-in, profile and security settings."""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from email_validator import EmailNotValidError, validate_email
from sqlalchemy.exc import IntegrityError

from .. import clock
from ..errors import ApiError, field_error
from ..extensions import db
from ..idempotency import commit_change
from ..models import BackupCode, User
from ..principal import Principal
from ..rules import entitlement
from ..rules.entitlement import status_at
from . import activity, credentials, guessing, notices, plans, sessions, tokens
from .locking import lock_user, lock_user_where

PREFERENCE_COLUMNS = ("language", "timezone", "theme", "email_notifications", "marketing_emails")


def new_public_id(prefix: str) -> str:
    """Return an opaque public id such as `user_3f9c…`."""
    return f"{prefix}_{secrets.token_hex(12)}"


def normalise_email(email: str) -> str:
    """Return an address as it is stored and compared: trimmed, Unicode NFC, the domain
    checked as IDNA (its A-label and U-label forms are one domain), all in lower case.

    Something that is not an address is only trimmed and lower-cased: a look-up finds nothing.
    """
    email = email.strip()
    try:
        email = validate_email(email, check_deliverability=False).normalized
    except EmailNotValidError:
        pass
    return email.lower()


@dataclass(frozen=True, slots=True)
class AccountView:
    """What GET /api/account shows: the user with their effective plan and usage."""

    id: str
    email: str
    name: str
    avatar: str | None
    email_verified: bool
    email_verified_at: datetime | None
    subscription_type: str
    subscription_status: str
    subscription_expires_at: datetime | None
    resumes_created: int
    resumes_limit: int
    api_requests_used: int
    api_requests_limit: int
    storage_used: int
    storage_limit: int
    preferences: dict[str, Any]
    created_at: datetime
    updated_at: datetime
    last_login_at: datetime | None


@dataclass(frozen=True, slots=True)
class SignIn:
    """A session just started: its token (for the cookie) and the account to show."""

    token: str
    account: AccountView


@dataclass(frozen=True, slots=True)
class SecurityChange:
    """What a security change reports, and the new session token after a password change."""

    result: dict[str, Any]
    session_token: str | None


def load_user(user_id: int) -> User:
    """Load the ORM user a read needs beyond the principal (a write locks it: `lock_user`)."""
    return db.session.get_one(User, user_id)


def effective_plan_type(user: User | Principal) -> str:
    """Return the plan type whose limits apply now (rules/entitlement.py)."""
    return entitlement.plan_type(user.current_subscription, clock.now(), _plan_type)


def _plan_type(plan_id: str) -> str:
    """Return a plan's type from the in-process plan snapshot (no query per request)."""
    return plans.plan_for_display(plan_id).type


def account_view(user: User | Principal) -> AccountView:
    """Assemble the account as the API shows it, as of the clock, without writing."""
    from . import usage  # usage builds on this module

    subscription = user.current_subscription
    status = status_at(subscription, clock.now()) if subscription is not None else "ACTIVE"
    counters = usage.current_usage(user)
    ended = subscription is None or status == "CANCELED"
    return AccountView(
        id=user.public_id,
        email=user.email,
        name=user.name,
        avatar=user.avatar,
        email_verified=user.email_verified_at is not None,
        email_verified_at=user.email_verified_at,
        subscription_type="FREE" if ended else _plan_type(subscription.plan_id),
        subscription_status=status,
        subscription_expires_at=None if ended else subscription.current_period_end,
        resumes_created=counters["resumes_created"],
        resumes_limit=counters["resumes_limit"],
        api_requests_used=counters["api_requests_used"],
        api_requests_limit=counters["api_requests_limit"],
        storage_used=counters["storage_used"],
        storage_limit=counters["storage_limit"],
        preferences={name: getattr(user, name) for name in PREFERENCE_COLUMNS},
        created_at=user.created_at,
        updated_at=user.updated_at,
        last_login_at=user.last_login_at,
    )


def personal_words(email: str, name: str) -> list[str]:
    """Return what zxcvbn should treat as guessable: the email, its local part and its pieces."""
    local = email.partition("@")[0]
    # zxcvbn matches user inputs as whole tokens: "ann.lee@x.com" alone does not catch "ann.lee".
    pieces = re.split(r"[._+\-\s]+", f"{local} {name}")
    return [email, local, name, *(piece for piece in pieces if len(piece) >= 3)]


def require_strong(password: str, field: str, user_inputs: list[str]) -> None:
    """Raise WEAK_PASSWORD (422) with zxcvbn's feedback unless the password is strong enough."""
    feedback = credentials.password_feedback(password, user_inputs)
    if feedback is not None:
        raise field_error(
            "WEAK_PASSWORD",
            "The password is too weak: " + feedback["warning"],
            field,
            feedback=feedback,
        )


def register(email: str, password: str, name: str) -> SignIn:
    """Create an account and start its first session."""
    email = normalise_email(email)
    require_strong(password, "password", personal_words(email, name))
    now = clock.now()
    user = User(
        public_id=new_public_id("user"),
        email=email,
        password_hash=credentials.hash_password(password),
        name=name,
        language="en",
        timezone="UTC",
        theme="light",
        email_notifications=True,
        marketing_emails=False,
        resumes_created=0,
        api_requests_used=0,
        storage_used=0,
        two_factor_enabled=False,
        created_at=now,
        updated_at=now,
        last_login_at=now,
    )
    db.session.add(user)
    try:
        db.session.flush()
    except IntegrityError:
        db.session.rollback()
        raise field_error(
            "EMAIL_TAKEN", "An account with this email already exists.", "email"
        ) from None
    from .recovery import send_verification_link  # recovery builds on this module

    send_verification_link(user)
    return _sign_in(user)


def _sign_in(user: User) -> SignIn:
    """Start a session for `user` and commit, the answer built before the commit."""
    token = sessions.start_session(user)
    signed_in = SignIn(token, account_view(Principal.of(user, token)))
    db.session.commit()
    return signed_in


def _invalid_credentials() -> ApiError:
    """The one answer for an unknown email and a wrong password."""
    return ApiError("INVALID_CREDENTIALS", "The email or password is incorrect.")


def two_factor_required() -> ApiError:
    """The answer when the second factor is on and no code was sent."""
    return field_error(
        "TWO_FACTOR_REQUIRED",
        "Enter the code from your authenticator app or a backup code.",
        "twoFactorCode",
    )


def invalid_two_factor_code() -> ApiError:
    """The answer for a wrong or already used second-factor code."""
    return field_error(
        "INVALID_TWO_FACTOR_CODE",
        "The two-factor code is incorrect or has already been used.",
        "twoFactorCode",
    )


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
    if replaces is not None:
        sessions.revoke_session(replaces)
    if credentials.needs_rehash(user.password_hash):
        # A changed BCRYPT_ROUNDS reaches every account at its next login, so no account's
        # login time gives away how old its hash is.
        user.password_hash = credentials.hash_password(password)
    user.last_login_at = clock.now()
    activity.record(user.id, "login_succeeded")
    return _sign_in(user)


def confirm_secrets(
    user: User,
    action: str,
    *,
    password: str | None = None,
    second_factor: bool = False,
    two_factor_code: str | None = None,
) -> None:
    """Check the answers a guarded change asks for, counted by the guessing limit.

    `password`, when given, must be the user's current one. With `second_factor` and two-factor
    on, `two_factor_code` must be a current TOTP code or an unused backup code. The caller holds
    `user` locked (`lock_user`); a wrong answer is recorded as `secret_refused` for `action`.
    """
    guessing.reserve(user)
    if password is not None and not credentials.check_password(password, user.password_hash):
        guessing.refuse(
            user,
            "secret_refused",
            {"action": action, "reason": "currentPassword"},
            field_error("INVALID_PASSWORD", "Current password is incorrect.", "currentPassword"),
        )
    if second_factor and user.two_factor_enabled:
        if not two_factor_code:
            guessing.accept(user)  # no code was offered, so none was guessed
            raise two_factor_required()
        if not accept_second_factor(user, two_factor_code):
            guessing.refuse(
                user,
                "secret_refused",
                {"action": action, "reason": "twoFactorCode"},
                invalid_two_factor_code(),
            )
    guessing.accept(user)


def accept_second_factor(user: User, code: str) -> bool:
    """Consume a TOTP code (never twice) or an unused backup code, atomically."""
    if not code.isascii():
        # Full-width digits pass isdigit(), but compare_digest and the backup-code hash take
        # ASCII only (they would raise: a 500); no real code holds them.
        return False
    if len(code) == 6 and code.isdigit() and user.totp_secret_encrypted:
        secret = credentials.decrypt_secret(user.totp_secret_encrypted)
        step = credentials.matching_totp_step(secret, code) if secret else None
        if step is None:
            return False
        # A conditional UPDATE, so two logins racing with one code cannot both win.
        result = db.session.execute(
            sa.update(User)
            .where(
                User.id == user.id,
                sa.or_(User.totp_last_step.is_(None), User.totp_last_step < step),
            )
            .values(totp_last_step=step)
            .execution_options(synchronize_session=False)
        )
        return result.rowcount == 1
    if len(code) == 8 and code.isdigit():
        result = db.session.execute(
            sa.update(BackupCode)
            .where(
                BackupCode.user_id == user.id,
                BackupCode.code_hash == credentials.hash_backup_code(code),
                BackupCode.used_at.is_(None),
            )
            .values(used_at=clock.now())
        )
        if result.rowcount == 1:
            activity.record(user.id, "backup_code_used")
        return result.rowcount == 1
    return False


def logout(token: str) -> None:
    """Revoke the session of this token and record it; the user's other sessions stay."""
    user_id = sessions.revoke_session(token)
    if user_id is not None:
        activity.record(user_id, "logout")
    db.session.commit()


def update_account(principal: Principal, changes: dict[str, Any]) -> AccountView:
    """Apply a partial update; preferences merge key by key."""
    user = lock_user(principal)
    for name in ("name", "avatar"):
        if name in changes:
            setattr(user, name, changes[name])
    for name, value in changes.get("preferences", {}).items():
        setattr(user, name, value)
    if changes:
        user.updated_at = clock.now()
    account = account_view(Principal.of(user, principal.session_token))
    commit_change()
    return account


def update_security(principal: Principal, changes: dict[str, Any]) -> SecurityChange:
    """Change the password and/or the second factor, after checking the current password.

    A password change ends every session of the user, this one included, and starts a new
    session for this browser: a copy of the old cookie is then worth nothing.
    """
    user = lock_user(principal)
    new_token = None
    wanted = changes.get("two_factor_enabled")
    confirm_secrets(
        user,
        "security_change",
        password=changes["current_password"],
        second_factor=wanted is False,
        two_factor_code=changes.get("two_factor_code"),
    )
    result: dict[str, Any] = {"password_updated": False}
    new_password = changes.get("new_password")
    if new_password is not None:
        require_strong(new_password, "newPassword", personal_words(user.email, user.name))
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
        result.update(_enable_two_factor(user))
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
    db.session.commit()
    return SecurityChange(result, new_token)


def _enable_two_factor(user: User) -> dict[str, Any]:
    """Make a TOTP secret and backup codes; return what the user must save."""
    secret = credentials.new_totp_secret()
    codes = credentials.new_backup_codes()
    user.two_factor_enabled = True
    user.totp_secret_encrypted = credentials.encrypt_secret(secret)
    user.totp_last_step = None
    db.session.execute(sa.delete(BackupCode).where(BackupCode.user_id == user.id))
    db.session.add_all(
        BackupCode(user_id=user.id, code_hash=credentials.hash_backup_code(code)) for code in codes
    )
    return {
        "backup_codes": codes,
        "otpauth_uri": credentials.provisioning_uri(secret, user.email),
        "secret": secret,
    }


def disable_two_factor(user: User) -> None:
    """Forget the TOTP secret and the backup codes."""
    user.two_factor_enabled = False
    user.totp_secret_encrypted = None
    user.totp_last_step = None
    db.session.execute(sa.delete(BackupCode).where(BackupCode.user_id == user.id))
