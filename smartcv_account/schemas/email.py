"""Schemas of the email verification, password reset and email change endpoints."""

from __future__ import annotations

from marshmallow import ValidationError, fields, validate, validates_schema

from ..services.credentials import MAX_PASSWORD_LENGTH
from .account import EMAIL_ADDRESS
from .base import BaseSchema, Trimmed, about, current_password

EMAIL = [
    validate.Length(max=254),
    validate.Email(error="Must be a valid email address."),
]
# Tokens are 43 URL-safe characters; anything far longer is not one of ours.
TOKEN = validate.Length(min=1, max=200)
TOKEN_EXAMPLE = "Zr3q0cX1mH8yJ2VbE5nT7uW9aK4sD6fG1hL0pQ2rS3t"


class TokenSchema(BaseSchema):
    """POST /api/auth/verify-email and POST /api/account/email/confirm."""

    token = Trimmed(
        required=True,
        validate=TOKEN,
        load_only=True,
        metadata=about("The token from the emailed link.", TOKEN_EXAMPLE),
    )


class PasswordResetRequestSchema(BaseSchema):
    """POST /api/auth/password-reset/request."""

    email = Trimmed(
        required=True,
        validate=EMAIL,
        load_only=True,
        metadata={**about("The account's email address.", "ada@example.com"), "format": "email"},
    )


class PasswordResetSchema(BaseSchema):
    """POST /api/auth/password-reset."""

    token = Trimmed(
        required=True,
        validate=TOKEN,
        load_only=True,
        metadata=about("The token from the emailed link.", TOKEN_EXAMPLE),
    )
    new_password = fields.String(
        data_key="newPassword",
        required=True,
        load_only=True,
        validate=validate.Length(
            max=MAX_PASSWORD_LENGTH, error=f"Must be at most {MAX_PASSWORD_LENGTH} characters."
        ),
        metadata=about("The new strong password.", "new tiger meadow 77"),
    )
    confirm_password = fields.String(
        data_key="confirmPassword",
        required=True,
        load_only=True,
        metadata=about("newPassword again.", "new tiger meadow 77"),
    )
    two_factor_code = Trimmed(
        data_key="twoFactorCode",
        load_only=True,
        validate=validate.Length(max=16),
        metadata=about(
            "Required when two-factor is on: an authenticator or backup code.", "123456"
        ),
    )

    @validates_schema
    def _passwords_match(self, data: dict, **kwargs) -> None:
        """Require confirmPassword to repeat newPassword."""
        if data["confirm_password"] != data["new_password"]:
            raise ValidationError("Must match newPassword.", "confirmPassword")


class EmailChangeSchema(BaseSchema):
    """POST /api/account/email."""

    new_email = Trimmed(
        data_key="newEmail",
        required=True,
        validate=EMAIL_ADDRESS,
        load_only=True,
        metadata={
            **about("The address to move to; a link is sent there.", "ada@newmail.example"),
            "format": "email",
        },
    )
    current_password = current_password()


token_schema = TokenSchema()
password_reset_request_schema = PasswordResetRequestSchema()
password_reset_schema = PasswordResetSchema()
email_change_schema = EmailChangeSchema()
