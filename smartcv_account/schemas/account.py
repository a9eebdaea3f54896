"""Schemas of the auth, account and security endpoints."""

from __future__ import annotations

from functools import lru_cache
from urllib.parse import urlsplit, urlunsplit
from zoneinfo import available_timezones

from email_validator import EmailNotValidError, validate_email
from marshmallow import ValidationError, fields, validate, validates, validates_schema

from ..services.credentials import MAX_PASSWORD_LENGTH
from .base import BaseSchema, StrictBoolean, Timestamp, Trimmed

SUPPORTED_LANGUAGES = ("en", "zh-cn")
THEMES = ("light", "dark", "auto")
NAME_LENGTH = validate.Length(min=1, max=100)


@lru_cache(maxsize=1)
def _timezones() -> frozenset[str]:
    """Return the IANA zone names (read once)."""
    return frozenset(available_timezones())


def _check_timezone(value: str) -> None:
    """Refuse a name that is not an IANA time zone."""
    if value not in _timezones():
        raise ValidationError("Must be an IANA time zone such as 'Europe/Paris' or 'UTC'.")


class PreferencesSchema(BaseSchema):
    """The five preferences; every key optional on load (PUT merges key by key)."""

    language = fields.String(validate=validate.OneOf(SUPPORTED_LANGUAGES))
    timezone = fields.String(validate=_check_timezone)
    theme = fields.String(validate=validate.OneOf(THEMES))
    email_notifications = StrictBoolean(data_key="emailNotifications")
    marketing_emails = StrictBoolean(data_key="marketingEmails")


class AccountSchema(BaseSchema):
    """GET /api/account: every field of the product document."""

    id = fields.String()
    email = fields.String()
    name = fields.String()
    avatar = fields.String(allow_none=True)
    email_verified = fields.Boolean(data_key="emailVerified")
    email_verified_at = Timestamp(data_key="emailVerifiedAt")
    subscription_type = fields.String(data_key="subscriptionType")
    subscription_status = fields.String(data_key="subscriptionStatus")
    subscription_expires_at = Timestamp(data_key="subscriptionExpiresAt")
    resumes_created = fields.Integer(data_key="resumesCreated")
    resumes_limit = fields.Integer(data_key="resumesLimit")
    api_requests_used = fields.Integer(data_key="apiRequestsUsed")
    api_requests_limit = fields.Integer(data_key="apiRequestsLimit")
    storage_used = fields.Integer(data_key="storageUsed")
    storage_limit = fields.Integer(data_key="storageLimit")
    preferences = fields.Nested(PreferencesSchema)
    created_at = Timestamp(data_key="createdAt")
    updated_at = Timestamp(data_key="updatedAt")
    last_login_at = Timestamp(data_key="lastLoginAt")


class AvatarUrl(fields.String):
    """An `https://` URL on a public host name, loaded in its normalised form.

    Refused: other schemes, user info (`user:pass@`, a phishing and credential-leak vector), IP
    literals in any notation, and local names (`localhost`, a name without a dot): the front end
    would load the image from wherever the URL points. Normalised: the host in lower-case IDNA
    (A-label) form, the default port dropped, an empty path as `/`.
    """

    default_error_messages = {"invalid": "Must be an https:// URL on a public host name."}

    def _deserialize(self, value, attr, data, **kwargs):
        text = super()._deserialize(value, attr, data, **kwargs).strip()
        try:
            parts = urlsplit(text)
            port = parts.port
        except ValueError:
            raise self.make_error("invalid") from None
        host = _public_host(parts.hostname or "")
        if parts.scheme.lower() != "https" or host is None or "@" in parts.netloc:
            raise self.make_error("invalid")
        if any(char.isspace() or ord(char) < 0x20 for char in text):
            raise self.make_error("invalid")
        netloc = host if port in (None, 443) else f"{host}:{port}"
        return urlunsplit(("https", netloc, parts.path or "/", parts.query, parts.fragment))


def _public_host(host: str) -> str | None:
    """Return the host name in lower-case IDNA form, or None for an IP or a local name."""
    host = host.rstrip(".")
    try:
        ascii_host = host.encode("idna").decode("ascii").lower()
    except UnicodeError:
        return None
    labels = ascii_host.split(".")
    # A top-level domain is letters (or an IDNA A-label): this also refuses every IP notation
    # (127.0.0.1, 127.1, 0x7f000001, [::1]) and names without a dot such as `localhost`.
    top = labels[-1]
    if len(labels) < 2 or not (top.isalpha() or top.startswith("xn--")) or "" in labels:
        return None
    if top in LOCAL_TOP_LEVEL or ascii_host.endswith(".localhost"):
        return None
    return ascii_host


# Names that resolve only on the local machine or network (RFC 6761, RFC 6762, RFC 8375).
LOCAL_TOP_LEVEL = frozenset({"localhost", "local", "internal", "lan", "home", "arpa", "test"})


class AccountUpdateSchema(BaseSchema):
    """PUT /api/account: a partial update; only the fields sent change."""

    name = Trimmed(validate=NAME_LENGTH)
    avatar = AvatarUrl(allow_none=True, validate=validate.Length(max=2048))
    preferences = fields.Nested(PreferencesSchema)


class RegisterSchema(BaseSchema):
    """POST /api/auth/register."""

    email = Trimmed(required=True, validate=validate.Length(max=254))
    password = fields.String(required=True, load_only=True)
    name = Trimmed(required=True, validate=NAME_LENGTH)

    @validates("email")
    def _email_syntax(self, value: str, **kwargs) -> None:
        """Check the email's syntax only (no deliverability look-up; the service runs offline),
        refusing special-use domains such as `localhost` and IP literals."""
        try:
            validate_email(value, check_deliverability=False)
        except EmailNotValidError as error:
            raise ValidationError(f"Must be a valid email address: {error}") from None

    @validates("password")
    def _password_length(self, value: str, **kwargs) -> None:
        """Refuse passwords over the maximum length."""
        if len(value) > MAX_PASSWORD_LENGTH:
            raise ValidationError(f"Must be at most {MAX_PASSWORD_LENGTH} characters.")


class LoginSchema(BaseSchema):
    """POST /api/auth/login."""

    email = Trimmed(required=True, validate=validate.Length(max=254))
    password = fields.String(required=True, load_only=True, validate=validate.Length(max=1024))
    two_factor_code = Trimmed(
        data_key="twoFactorCode", load_only=True, validate=validate.Length(max=16)
    )


class SecurityUpdateSchema(BaseSchema):
    """PUT /api/account/security."""

    current_password = fields.String(
        data_key="currentPassword", required=True, validate=validate.Length(max=1024)
    )
    new_password = fields.String(data_key="newPassword")
    confirm_password = fields.String(data_key="confirmPassword")
    two_factor_enabled = StrictBoolean(data_key="twoFactorEnabled")
    two_factor_code = Trimmed(
        data_key="twoFactorCode", load_only=True, validate=validate.Length(max=16)
    )

    @validates("new_password")
    def _password_length(self, value: str, **kwargs) -> None:
        """Refuse passwords over the maximum length."""
        if len(value) > MAX_PASSWORD_LENGTH:
            raise ValidationError(f"Must be at most {MAX_PASSWORD_LENGTH} characters.")

    @validates_schema
    def _passwords_together(self, data: dict, **kwargs) -> None:
        """Require newPassword and confirmPassword together, and equal."""
        new, confirm = data.get("new_password"), data.get("confirm_password")
        if new is None and confirm is None:
            return
        if new is None:
            raise ValidationError("Send newPassword together with confirmPassword.", "newPassword")
        if confirm is None or confirm != new:
            raise ValidationError("Must match newPassword.", "confirmPassword")


class SecurityResultSchema(BaseSchema):
    """The `data` of PUT /api/account/security."""

    password_updated = fields.Boolean(data_key="passwordUpdated")
    two_factor_enabled = fields.Boolean(data_key="twoFactorEnabled")
    backup_codes = fields.List(fields.String(), data_key="backupCodes")
    otpauth_uri = fields.String(data_key="otpauthUri")
    secret = fields.String()


account_schema = AccountSchema()
dump_account = account_schema.dump
account_update_schema = AccountUpdateSchema()
register_schema = RegisterSchema()
login_schema = LoginSchema()
security_update_schema = SecurityUpdateSchema()
security_result_schema = SecurityResultSchema()
