"""Passkeys, linked identities and the social sign-in's requests and answers."""

from __future__ import annotations

from marshmallow import EXCLUDE, fields, validate

from .base import BaseSchema, Timestamp, Trimmed, about, current_password_field

PASSKEY_NAME = validate.Length(min=1, max=100)
CREDENTIAL = about(
    "The browser's PublicKeyCredential as JSON (its `toJSON()`): `id`, `rawId`, `type`, "
    "`response` with base64url fields, `clientExtensionResults`.",
    {"id": "AbC…", "rawId": "AbC…", "type": "public-key", "response": {}},
)
# The WebAuthn options as their JSON form: binary values base64url, as
# `PublicKeyCredential.parseCreationOptionsFromJSON` / `parseRequestOptionsFromJSON` take them.
WEBAUTHN_OPTIONS = {
    "type": "object",
    "description": "`publicKey`: the WebAuthn options as JSON (binary values base64url).",
    "required": ["publicKey"],
    "properties": {
        "publicKey": {
            "type": "object",
            "description": "PublicKeyCredentialCreationOptionsJSON or "
            "PublicKeyCredentialRequestOptionsJSON.",
            "additionalProperties": True,
        }
    },
    "additionalProperties": False,
    "example": {
        "publicKey": {
            "challenge": "3q2-7w…",
            "rpId": "smartcv.example",
            "timeout": 300000,
            "userVerification": "required",
            "allowCredentials": [],
        }
    },
}


class PasskeyOptionsSchema(BaseSchema):
    """POST /api/account/passkeys/options."""

    current_password = current_password_field()


class PasskeyCreateSchema(BaseSchema):
    """POST /api/account/passkeys."""

    name = Trimmed(
        required=True, validate=PASSKEY_NAME, metadata=about("A name for it.", "Work laptop")
    )
    credential = fields.Dict(required=True, load_only=True, metadata=CREDENTIAL)


class PasskeyRenameSchema(BaseSchema):
    """PUT /api/account/passkeys/<id>."""

    name = Trimmed(required=True, validate=PASSKEY_NAME, metadata=about("The new name.", "Phone"))


class PasskeySignInSchema(BaseSchema):
    """POST /api/auth/passkey."""

    credential = fields.Dict(required=True, load_only=True, metadata=CREDENTIAL)


class PasskeySchema(BaseSchema):
    """A passkey of the account."""

    id = fields.String(
        attribute="public_id", metadata=about("The passkey's id.", "pk_4b7d1e9a2c6f8e30a1b2c3d4")
    )
    name = fields.String(metadata=about("Its name.", "Work laptop"))
    created_at = Timestamp(data_key="createdAt", metadata=about("When it was added."))
    last_used_at = Timestamp(
        data_key="lastUsedAt",
        allow_none=True,
        metadata=about("When it last signed in, or null."),
    )
    backed_up = fields.Boolean(
        data_key="backedUp",
        metadata=about("Whether the authenticator says it is synced (backed up).", True),
    )


class IdentitySchema(BaseSchema):
    """An account at an identity provider linked to this one."""

    id = fields.String(
        attribute="public_id",
        metadata=about("The identity's id.", "idn_4b7d1e9a2c6f8e30a1b2c3d4"),
    )
    provider = fields.String(metadata=about("The provider's name.", "google"))
    email = fields.String(
        allow_none=True, metadata=about("The email the provider gave, or null.", "ada@gmail.com")
    )
    created_at = Timestamp(data_key="createdAt", metadata=about("When it was linked."))


class ProviderSchema(BaseSchema):
    """A provider one can sign in with."""

    name = fields.String(metadata=about("Its name in the sign-in URLs.", "google"))
    display_name = fields.String(
        data_key="displayName", metadata=about("Its name for people.", "Google")
    )


class OidcStartSchema(BaseSchema):
    """GET /api/auth/oidc/<name>/start."""

    return_to = fields.String(
        data_key="returnTo",
        validate=validate.Length(max=2048),
        metadata=about(
            "A path on the front end to land on afterwards; anything else is ignored.",
            "/dashboard",
        ),
    )
    link = fields.Boolean(
        metadata=about("Link the identity to the signed-in account instead of signing in.", False)
    )


class OidcCallbackSchema(BaseSchema):
    """GET /api/auth/oidc/<name>/callback: what the provider sends back."""

    class Meta:
        # Providers add parameters of their own (`scope`, `session_state`, `iss`, …).
        unknown = EXCLUDE

    code = fields.String(metadata=about("The authorization code.", "SplxlOBeZQQYbYS6WxSbIA"))
    state = fields.String(metadata=about("The state sent with the request.", "af0ifjsldkj"))
    error = fields.String(metadata=about("The provider's error, when it refused.", "access_denied"))


class SecondFactorSchema(BaseSchema):
    """POST /api/auth/login/second-factor."""

    two_factor_code = Trimmed(
        data_key="twoFactorCode",
        required=True,
        load_only=True,
        validate=validate.Length(min=1, max=16),
        metadata=about("A code from the authenticator app, or an unused backup code.", "123456"),
    )


passkey_options_schema = PasskeyOptionsSchema()
passkey_create_schema = PasskeyCreateSchema()
passkey_rename_schema = PasskeyRenameSchema()
passkey_sign_in_schema = PasskeySignInSchema()
passkey_schema = PasskeySchema()
passkeys_schema = PasskeySchema(many=True)
identities_schema = IdentitySchema(many=True)
providers_schema = ProviderSchema(many=True)
oidc_start_schema = OidcStartSchema()
oidc_callback_schema = OidcCallbackSchema()
second_factor_schema = SecondFactorSchema()
