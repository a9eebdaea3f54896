"""Schemas of the auth, account and security endpoints."""

from __future__ import annotations

from functools import lru_cache
from urllib.parse import urlsplit, urlunsplit
from zoneinfo import available_timezones

from email_validator import EmailNotValidError, validate_email
from marshmallow import ValidationError, fields, validate, validates, validates_schema

from ..catalogue import PLAN_TYPE_ORDER
from ..models import TEAM_ROLES
from ..models.billing import LIVE_STATUSES
from ..services.credentials import MAX_PASSWORD_LENGTH
from .base import BaseSchema, StrictBoolean, Timestamp, Trimmed, about, current_password_field

SUPPORTED_LANGUAGES = ("en", "zh-cn")
THEMES = ("light", "dark", "auto")
PLAN_SOURCES = ("personal", "team")
SUBSCRIPTION_STATUSES = (*LIVE_STATUSES, "CANCELED")
NAME_LENGTH = validate.Length(min=1, max=100)
JUST_ENABLED = "this request did not turn two-factor on"
TWO_FACTOR_CODE = "A 6-digit code from the authenticator app, or an unused 8-digit backup code."


@lru_cache(maxsize=1)
def _timezones() -> frozenset[str]:
    """Return the IANA zone names (read once)."""
    return frozenset(available_timezones())


def check_email_address(value: str) -> None:
    """Check an address's syntax only (no deliverability look-up; the service runs offline),
    refusing special-use and reserved domains such as `localhost` and IP literals.

    The one rule for an address an account takes: at registration and in an email change.
    """
    try:
        validate_email(value, check_deliverability=False)
    except EmailNotValidError as error:
        raise ValidationError(f"Must be a valid email address: {error}") from None


EMAIL_ADDRESS = [validate.Length(max=254), check_email_address]


def _check_timezone(value: str) -> None:
    """Refuse a name that is not an IANA time zone."""
    if value not in _timezones():
        raise ValidationError("Must be an IANA time zone such as 'Europe/Paris' or 'UTC'.")


class PreferencesSchema(BaseSchema):
    """The five preferences; every key optional on load (PUT merges key by key)."""

    language = fields.String(
        validate=validate.OneOf(SUPPORTED_LANGUAGES),
        metadata=about("The interface language (default `en`).", "en"),
    )
    timezone = fields.String(
        validate=_check_timezone,
        metadata=about("An IANA time zone for dates shown to the user (default `UTC`).", "UTC"),
    )
    theme = fields.String(
        validate=validate.OneOf(THEMES),
        metadata=about(
            "The interface theme; `auto` follows the system (default `light`).", "light"
        ),
    )
    email_notifications = StrictBoolean(
        data_key="emailNotifications",
        metadata=about("Whether account and billing notices are emailed (default true).", True),
    )
    marketing_emails = StrictBoolean(
        data_key="marketingEmails",
        metadata=about("Whether product news may be emailed (default false).", False),
    )


class StoredPreferencesSchema(PreferencesSchema):
    """The preferences as the account shows them: always all five keys."""


class MembershipSchema(BaseSchema):
    """A team of the user, as the account shows it."""

    id = fields.String(metadata=about("The team's id.", "team_5d0c2a7e9b1f3c4d6e8a0b2c"))
    name = fields.String(metadata=about("The team's name.", "Acme"))
    role = fields.String(
        validate=validate.OneOf(TEAM_ROLES), metadata=about("The user's role in it.", "member")
    )


class AccountSchema(BaseSchema):
    """GET /api/account: every field of the product document."""

    id = fields.String(metadata=about("The user's id.", "user_9f2c4e7a1b3d5f60"))
    email = fields.String(metadata=about("The sign-in email address.", "ada@example.com"))
    name = fields.String(metadata=about("The display name (1-100 characters).", "Ada Lovelace"))
    avatar = fields.String(
        allow_none=True,
        metadata=about(
            "An https URL of the profile picture, or null.", "https://images.example.com/ada.png"
        ),
    )
    email_verified = fields.Boolean(
        data_key="emailVerified", metadata=about("Whether the email address is verified.", True)
    )
    email_verified_at = Timestamp(
        data_key="emailVerifiedAt",
        allow_none=True,
        metadata=about("When it was verified, or null."),
    )
    subscription_type = fields.String(
        data_key="subscriptionType",
        validate=validate.OneOf(PLAN_TYPE_ORDER),
        metadata=about(
            "The plan type whose limits apply now: the best of the user's own plan and their"
            " teams' plans.",
            "PREMIUM",
        ),
    )
    subscription_status = fields.String(
        data_key="subscriptionStatus",
        validate=validate.OneOf(SUBSCRIPTION_STATUSES),
        metadata=about("The status of the current subscription.", "ACTIVE"),
    )
    subscription_expires_at = Timestamp(
        data_key="subscriptionExpiresAt",
        allow_none=True,
        metadata=about("The end of the paid period, or null on the free plan."),
    )
    resumes_created = fields.Integer(
        data_key="resumesCreated", metadata=about("Resumes the user has now.", 4)
    )
    resumes_limit = fields.Integer(
        data_key="resumesLimit", metadata=about("The plan's resume limit; -1 is unlimited.", 50)
    )
    api_requests_used = fields.Integer(
        data_key="apiRequestsUsed", metadata=about("API requests made this month.", 120)
    )
    api_requests_limit = fields.Integer(
        data_key="apiRequestsLimit",
        metadata=about("The plan's monthly API request limit; -1 is unlimited.", 10000),
    )
    storage_used = fields.Integer(
        data_key="storageUsed", metadata=about("Storage used, in bytes.", 1048576)
    )
    storage_limit = fields.Integer(
        data_key="storageLimit",
        metadata=about("The plan's storage limit in bytes; -1 is unlimited.", 1073741824),
    )
    preferences = fields.Nested(
        StoredPreferencesSchema, metadata=about("The user's preferences, all five keys.")
    )
    created_at = Timestamp(data_key="createdAt", metadata=about("When the account was created."))
    updated_at = Timestamp(
        data_key="updatedAt", metadata=about("When the account was last changed.")
    )
    last_login_at = Timestamp(
        data_key="lastLoginAt",
        allow_none=True,
        metadata=about("When the user last signed in, or null."),
    )
    plan_source = fields.String(
        data_key="planSource",
        validate=validate.OneOf(PLAN_SOURCES),
        metadata=about(
            "`team` when a team's plan beats the user's own, else `personal`.", "personal"
        ),
    )
    teams = fields.List(
        fields.Nested(MembershipSchema), metadata=about("The teams the user belongs to.")
    )


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

    name = Trimmed(
        validate=NAME_LENGTH,
        metadata=about("A new display name (1-100 characters, trimmed).", "Ada King"),
    )
    avatar = AvatarUrl(
        allow_none=True,
        validate=validate.Length(max=2048),
        metadata=about(
            "An https URL on a public host, stored normalised; null removes the picture.",
            "https://images.example.com/ada.png",
        ),
    )
    preferences = fields.Nested(
        PreferencesSchema,
        metadata=about("Preferences to change; keys left out keep their value."),
    )


class RegisterSchema(BaseSchema):
    """POST /api/auth/register."""

    email = Trimmed(
        required=True,
        validate=EMAIL_ADDRESS,
        metadata={
            **about("The email address to sign in with.", "ada@example.com"),
            "format": "email",
        },
    )
    password = fields.String(
        required=True,
        load_only=True,
        metadata=about(
            "A strong password (zxcvbn score 3 or more, at most 128 characters).",
            "correct horse battery staple 42",
        ),
    )
    name = Trimmed(
        required=True,
        validate=NAME_LENGTH,
        metadata=about("The display name (1-100 characters).", "Ada Lovelace"),
    )

    @validates("password")
    def _password_length(self, value: str, **kwargs) -> None:
        """Refuse passwords over the maximum length."""
        if len(value) > MAX_PASSWORD_LENGTH:
            raise ValidationError(f"Must be at most {MAX_PASSWORD_LENGTH} characters.")


class LoginSchema(BaseSchema):
    """POST /api/auth/login."""

    email = Trimmed(
        required=True,
        validate=validate.Length(max=254),
        metadata=about("The account's email address.", "ada@example.com"),
    )
    password = fields.String(
        required=True,
        load_only=True,
        validate=validate.Length(max=1024),
        metadata=about("The account's password.", "correct horse battery staple 42"),
    )
    two_factor_code = Trimmed(
        data_key="twoFactorCode",
        load_only=True,
        validate=validate.Length(max=16),
        metadata=about(TWO_FACTOR_CODE, "123456"),
    )


class SecurityUpdateSchema(BaseSchema):
    """PUT /api/account/security."""

    current_password = current_password_field(load_only=False)
    new_password = fields.String(
        data_key="newPassword",
        metadata=about("A new strong password; send with confirmPassword.", "new tiger meadow 77"),
    )
    confirm_password = fields.String(
        data_key="confirmPassword",
        metadata=about("newPassword again.", "new tiger meadow 77"),
    )
    two_factor_enabled = StrictBoolean(
        data_key="twoFactorEnabled",
        metadata=about("true starts two-factor set-up, false turns it off.", True),
    )
    two_factor_code = Trimmed(
        data_key="twoFactorCode",
        load_only=True,
        validate=validate.Length(max=16),
        metadata=about(TWO_FACTOR_CODE + " Needed to turn two-factor off.", "123456"),
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

    password_updated = fields.Boolean(
        data_key="passwordUpdated", metadata=about("Whether the password was changed.", False)
    )
    two_factor_enabled = fields.Boolean(
        data_key="twoFactorEnabled", metadata=about("Whether two-factor is on now.", True)
    )
    backup_codes = fields.List(
        fields.String(),
        data_key="backupCodes",
        metadata=about(
            "Eight single-use 8-digit backup codes, shown once when two-factor is turned on.",
            ["40417593", "88120346"],
            omitted_when=JUST_ENABLED,
        ),
    )
    otpauth_uri = fields.String(
        data_key="otpauthUri",
        metadata=about(
            "The otpauth:// URI to show as a QR code, when two-factor was turned on.",
            "otpauth://totp/SmartCV:ada%40example.com?secret=JBSWY3DPEHPK3PXP&issuer=SmartCV",
            omitted_when=JUST_ENABLED,
        ),
    )
    secret = fields.String(
        metadata=about(
            "The TOTP secret in base32, when two-factor was turned on.",
            "JBSWY3DPEHPK3PXP",
            omitted_when=JUST_ENABLED,
        )
    )


account_schema = AccountSchema()
account_update_schema = AccountUpdateSchema()
register_schema = RegisterSchema()
login_schema = LoginSchema()
security_update_schema = SecurityUpdateSchema()
security_result_schema = SecurityResultSchema()
