"""The second factor: TOTP codes and backup codes, turning it on and off, and its refusals."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from .. import clock
from ..errors import ApiError, field_error
from ..extensions import db
from ..models import BackupCode, User
from . import activity, credentials


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


def enable_two_factor(user: User) -> dict[str, Any]:
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
