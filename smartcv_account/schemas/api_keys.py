"""Schemas of the API key endpoints and of the internal verify call."""

from __future__ import annotations

from marshmallow import fields, validate

from ..services.api_keys import SCOPES
from .base import (
    BaseSchema,
    StrictBoolean,
    StrictInteger,
    Timestamp,
    Trimmed,
    about,
    current_password_field,
)

SCOPE_NAMES = tuple(SCOPES)
DEFAULT_EXPIRY_DAYS = 90
SECRET_EXAMPLE = "scv_" + "7Gq2XbKp0sRzW4nT9vLm3cHd8YfA1uJeQ6oNiB5kMxZ" + "1DUF2n"
PREFIX_EXAMPLE = SECRET_EXAMPLE[:12]
KEY_ID_EXAMPLE = "key_4b7d1e9a2c6f8e3012345678"


class ApiKeyCreateSchema(BaseSchema):
    """POST /api/account/api-keys: a name, scopes, an expiry and the current password."""

    name = Trimmed(
        required=True,
        validate=validate.Length(1, 100),
        metadata=about("A name to tell the key apart by.", "CV sync script"),
    )
    scopes = fields.List(
        fields.String(validate=validate.OneOf(SCOPE_NAMES)),
        required=True,
        validate=validate.Length(min=1, max=len(SCOPE_NAMES)),
        metadata=about(
            "What the key may do: a non-empty set of " + ", ".join(SCOPE_NAMES) + ".",
            ["resumes:read", "ai:use"],
        ),
    )
    expires_in_days = StrictInteger(
        data_key="expiresInDays",
        load_default=DEFAULT_EXPIRY_DAYS,
        validate=validate.Range(1, 365),
        metadata=about("Days until the key stops working (1-365, default 90).", 90),
    )
    current_password = current_password_field()


class ApiKeySchema(BaseSchema):
    """A key as its owner sees it (never its secret but in the answer that made it)."""

    id = fields.String(metadata=about("The key's id.", KEY_ID_EXAMPLE))
    name = fields.String(metadata=about("Its name.", "CV sync script"))
    scopes = fields.List(
        fields.String(validate=validate.OneOf(SCOPE_NAMES)),
        metadata=about("What it may do.", ["resumes:read", "ai:use"]),
    )
    prefix = fields.String(
        metadata=about("The secret's first 12 characters, to tell keys apart.", PREFIX_EXAMPLE)
    )
    created_at = Timestamp(data_key="createdAt", metadata=about("When it was made."))
    expires_at = Timestamp(data_key="expiresAt", metadata=about("When it stops working."))
    last_used_at = Timestamp(
        data_key="lastUsedAt",
        allow_none=True,
        metadata=about("When it was last verified (up to 60 seconds behind), or null."),
    )


class NewApiKeySchema(ApiKeySchema):
    """The answer that makes a key: the key and its secret, shown this once."""

    secret = fields.String(
        metadata=about(
            "The key itself: keep it now, it is never shown again (only a hash is stored).",
            SECRET_EXAMPLE,
        )
    )


class ApiKeyRecordSchema(ApiKeySchema):
    """A key in the export: revoked and expired ones too."""

    revoked_at = Timestamp(
        data_key="revokedAt", allow_none=True, metadata=about("When it was revoked, or null.")
    )


class VerifySchema(BaseSchema):
    """POST /api/internal/api-keys/verify: the key a caller presented, and what it is for."""

    key = fields.String(
        required=True,
        validate=validate.Length(max=200),
        metadata=about("The API key the caller presented.", SECRET_EXAMPLE),
    )
    scope = fields.String(
        validate=validate.OneOf(SCOPE_NAMES),
        metadata=about("The scope the call needs; none checked when left out.", "ai:use"),
    )
    count = StrictBoolean(
        load_default=True,
        metadata=about(
            "Count the call as one API request (default). False only checks the key and the"
            " scope and reports the usage.",
            True,
        ),
    )


class KeyUsageSchema(BaseSchema):
    """The verify call's `usage`: the monthly API requests."""

    api_requests_used = fields.Integer(
        data_key="apiRequestsUsed",
        metadata=about("API requests this month, this one included when counted.", 121),
    )
    api_requests_limit = fields.Integer(
        data_key="apiRequestsLimit",
        metadata=about("The plan's monthly API request limit; -1 is unlimited.", 1000),
    )
    reset_date = Timestamp(
        data_key="resetDate", metadata=about("When apiRequestsUsed next resets to 0.")
    )


class VerifiedSchema(BaseSchema):
    """The `data` of a verify call that passed."""

    key_id = fields.String(data_key="keyId", metadata=about("The key's id.", KEY_ID_EXAMPLE))
    user_id = fields.String(
        data_key="userId", metadata=about("The key's owner.", "user_3f9c2a7d1b4e6f8a0c2e4d6b")
    )
    scopes = fields.List(
        fields.String(validate=validate.OneOf(SCOPE_NAMES)),
        metadata=about("What the key may do.", ["resumes:read", "ai:use"]),
    )
    subscription_type = fields.String(
        data_key="subscriptionType",
        validate=validate.OneOf(("FREE", "PREMIUM", "ENTERPRISE")),
        metadata=about("The plan type whose limits apply to the owner now.", "PREMIUM"),
    )
    usage = fields.Nested(KeyUsageSchema, metadata=about("The owner's API requests."))


api_key_create_schema = ApiKeyCreateSchema()
new_api_key_schema = NewApiKeySchema()
api_keys_schema = ApiKeySchema(many=True)
verify_schema = VerifySchema()
verified_schema = VerifiedSchema()
