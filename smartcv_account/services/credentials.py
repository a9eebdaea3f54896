"""Passwords, password strength, TOTP and backup codes."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from functools import lru_cache

import bcrypt
import pyotp
from cryptography.fernet import Fernet, InvalidToken
from flask import current_app
from zxcvbn import zxcvbn

from .. import clock
from ..errors import field_error

MIN_PASSWORD_LENGTH = 8
MAX_PASSWORD_LENGTH = 128
MIN_PASSWORD_SCORE = 3
ZXCVBN_MAX_INPUT = 72
BACKUP_CODE_COUNT = 10
TOTP_INTERVAL = 30


def _prehash(password: str) -> bytes:
    """SHA-256 the password so bcrypt sees every byte (bcrypt alone stops at 72 bytes)."""
    return base64.b64encode(hashlib.sha256(password.encode("utf-8")).digest())


def hash_password(password: str) -> str:
    """Return the bcrypt hash of a password, at the configured cost."""
    rounds = current_app.config["BCRYPT_ROUNDS"]
    return bcrypt.hashpw(_prehash(password), bcrypt.gensalt(rounds)).decode("ascii")


def needs_rehash(password_hash: str) -> bool:
    """Tell whether a bcrypt hash (`$2b$12$...`) was made at another cost than BCRYPT_ROUNDS."""
    parts = password_hash.split("$")
    cost = int(parts[2]) if len(parts) > 3 and parts[2].isdigit() else None
    return cost != current_app.config["BCRYPT_ROUNDS"]


def check_password(password: str, password_hash: str) -> bool:
    """Tell whether `password` matches `password_hash`, in constant time."""
    return bcrypt.checkpw(_prehash(password), password_hash.encode("ascii"))


@lru_cache(maxsize=8)
def _dummy_hash(rounds: int) -> str:
    """Return a bcrypt hash at `rounds` to check unknown emails against."""
    return bcrypt.hashpw(b"dummy-password-for-timing", bcrypt.gensalt(rounds)).decode("ascii")


def burn_password_check(password: str) -> None:
    """Spend the time of a real check, so an unknown email answers as slowly as a wrong password."""
    check_password(password, _dummy_hash(current_app.config["BCRYPT_ROUNDS"]))


def password_feedback(password: str, user_inputs: list[str]) -> dict | None:
    """Return zxcvbn's feedback when the password is too weak, or None when it is strong enough."""
    if len(password) < MIN_PASSWORD_LENGTH:
        return {
            "warning": f"Use at least {MIN_PASSWORD_LENGTH} characters.",
            "suggestions": ["Add more words or characters."],
            "score": 0,
        }
    result = zxcvbn(password[:ZXCVBN_MAX_INPUT], user_inputs=[u for u in user_inputs if u])
    if result["score"] >= MIN_PASSWORD_SCORE:
        return None
    feedback = result.get("feedback") or {}
    return {
        "warning": feedback.get("warning") or "This password is too easy to guess.",
        "suggestions": list(feedback.get("suggestions") or []),
        "score": result["score"],
    }


# --- secrets at rest -------------------------------------------------------------------------


def _key_material() -> bytes:
    """Return the 32-byte key for secrets at rest and backup-code hashes."""
    configured = current_app.config.get("DATA_ENCRYPTION_KEY") or current_app.config["SECRET_KEY"]
    return hashlib.sha256(b"smartcv-data-key:" + configured.encode("utf-8")).digest()


def _fernet() -> Fernet:
    """Return the Fernet cipher for TOTP secrets."""
    return Fernet(base64.urlsafe_b64encode(_key_material()))


def encrypt_secret(value: str) -> str:
    """Encrypt a secret (the TOTP seed) for storage."""
    return _fernet().encrypt(value.encode("utf-8")).decode("ascii")


def decrypt_secret(token: str) -> str | None:
    """Decrypt a stored secret; None when the key no longer opens it."""
    try:
        return _fernet().decrypt(token.encode("ascii")).decode("utf-8")
    except InvalidToken:
        return None


# --- second factor ---------------------------------------------------------------------------


def new_totp_secret() -> str:
    """Return a fresh base32 TOTP secret."""
    return pyotp.random_base32()


def provisioning_uri(secret: str, email: str) -> str:
    """Return the otpauth:// URI an authenticator app scans."""
    issuer = current_app.config["TOTP_ISSUER"]
    return pyotp.TOTP(secret, interval=TOTP_INTERVAL).provisioning_uri(
        name=email, issuer_name=issuer
    )


def matching_totp_step(secret: str, code: str) -> int | None:
    """Return the time step (now, or one step either side) whose TOTP code is `code`, or None."""
    totp = pyotp.TOTP(secret, interval=TOTP_INTERVAL)
    current = int(clock.now().timestamp()) // TOTP_INTERVAL
    for step in (current, current - 1, current + 1):
        if hmac.compare_digest(totp.generate_otp(step), code):
            return step
    return None


def new_backup_codes() -> list[str]:
    """Return ten random 8-digit backup codes."""
    codes: set[str] = set()
    while len(codes) < BACKUP_CODE_COUNT:
        codes.add(f"{secrets.randbelow(10**8):08d}")
    return sorted(codes)


def hash_backup_code(code: str) -> str:
    """Hash a backup code with a key from configuration (8 digits are too few for a plain hash)."""
    return hmac.new(_key_material(), code.encode("ascii"), hashlib.sha256).hexdigest()


def personal_words(email: str, name: str) -> list[str]:
    """Return what zxcvbn should treat as guessable: the email, its local part and its pieces."""
    local = email.partition("@")[0]
    # zxcvbn matches user inputs as whole tokens: "ann.lee@x.com" alone does not catch "ann.lee".
    pieces = re.split(r"[._+\-\s]+", f"{local} {name}")
    return [email, local, name, *(piece for piece in pieces if len(piece) >= 3)]


def require_strong(password: str, field: str, user_inputs: list[str]) -> None:
    """Raise WEAK_PASSWORD (422) with zxcvbn's feedback unless the password is strong enough."""
    feedback = password_feedback(password, user_inputs)
    if feedback is not None:
        raise field_error(
            "WEAK_PASSWORD",
            "The password is too weak: " + feedback["warning"],
            field,
            feedback=feedback,
        )
