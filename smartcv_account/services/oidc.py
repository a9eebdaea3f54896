"""OpenID Connect, the protocol side (Authlib's client, joserfc for the ID token).

A provider is configured by name (`OIDC_PROVIDERS`, `OIDC_<NAME>_ISSUER`, `_CLIENT_ID`,
`_CLIENT_SECRET`, `_DISPLAY_NAME`); its endpoints come from the issuer's discovery document.
A sign-in is the authorization-code flow with PKCE (S256), `state` and `nonce`. The three
secrets of one attempt, and what the browser asked for (where to go back to, whether to link),
travel in a short-lived signed cookie (HttpOnly, SameSite=Lax, only sent to /api/auth/oidc/):
the callback is accepted only from the browser that started it. The ID token is verified
against the issuer's published keys: signature, `iss`, `aud`, `exp` and `nonce`.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from typing import Any

import requests
from authlib.common.security import generate_token
from authlib.integrations.requests_client import OAuth2Session
from flask import current_app
from itsdangerous import BadSignature, URLSafeSerializer
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from .. import clock
from ..errors import ApiError

STATE_COOKIE = "smartcv_oidc"
STATE_COOKIE_PATH = "/api/auth/oidc/"
STATE_LIFETIME_SECONDS = 600
STATE_SALT = "smartcv-oidc-state"
HTTP_TIMEOUT_SECONDS = 10
ID_TOKEN_ALGORITHMS = ("RS256", "PS256", "ES256")
MAX_RETURN_TO = 512


class SignInFailed(Exception):
    """The callback cannot sign anyone in; `reason` goes to the front end's sign-in page."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Provider:
    """One configured OpenID Connect provider."""

    name: str
    display_name: str
    issuer: str
    client_id: str
    client_secret: str


def providers() -> list[Provider]:
    """The configured providers, in the order OIDC_PROVIDERS names them."""
    config = current_app.config
    found = []
    for name in (n.strip() for n in config.get("OIDC_PROVIDERS", "").split(",")):
        prefix = f"OIDC_{name.upper()}_"
        if name and config.get(prefix + "ISSUER"):
            found.append(
                Provider(
                    name=name,
                    display_name=config.get(prefix + "DISPLAY_NAME") or name,
                    issuer=config[prefix + "ISSUER"].rstrip("/"),
                    client_id=config.get(prefix + "CLIENT_ID", ""),
                    client_secret=config.get(prefix + "CLIENT_SECRET", ""),
                )
            )
    return found


def provider(name: str) -> Provider:
    """The provider called `name`, or 404."""
    for candidate in providers():
        if candidate.name == name:
            return candidate
    raise ApiError("NOT_FOUND", "No sign-in provider has this name.", {"field": "name"})


def _get_json(url: str) -> dict[str, Any]:
    """GET a JSON document from the provider."""
    try:
        response = requests.get(url, timeout=HTTP_TIMEOUT_SECONDS)
        response.raise_for_status()
        document = response.json()
    except (requests.RequestException, ValueError):
        raise SignInFailed("provider") from None
    if not isinstance(document, dict):
        raise SignInFailed("provider")
    return document


def discovery(chosen: Provider) -> dict[str, Any]:
    """The issuer's discovery document, which must name the issuer itself."""
    document = _get_json(chosen.issuer + "/.well-known/openid-configuration")
    if str(document.get("issuer", "")).rstrip("/") != chosen.issuer:
        raise SignInFailed("provider")
    return document


def safe_return_to(value: str | None) -> str:
    """A path on the front end to go back to; anything else (another site) becomes "/"."""
    if (
        not value
        or len(value) > MAX_RETURN_TO
        or not value.startswith("/")
        or value.startswith(("//", "/\\"))
        or any(ord(c) < 0x21 or c == "\\" for c in value)
    ):
        return "/"
    return value


def sign(salt: str, payload: dict[str, Any]) -> str:
    """A cookie value holding `payload` and when it was made, signed with SECRET_KEY."""
    serializer = URLSafeSerializer(current_app.config["SECRET_KEY"], salt=salt)
    return serializer.dumps({**payload, "t": int(clock.now().timestamp())})


def unsign(salt: str, value: str | None, max_age: int) -> dict[str, Any] | None:
    """The payload of a cookie made by `sign` less than `max_age` seconds ago, or None."""
    serializer = URLSafeSerializer(current_app.config["SECRET_KEY"], salt=salt)
    try:
        payload = serializer.loads(value or "")
    except BadSignature:
        return None
    if not isinstance(payload, dict) or not isinstance(payload.get("t"), int):
        return None
    age = clock.now().timestamp() - payload["t"]
    return payload if 0 <= age < max_age else None


@dataclass(frozen=True, slots=True)
class Authorization:
    """Where to send the browser, and the signed cookie that binds the attempt to it."""

    url: str
    cookie: str


def start(chosen: Provider, redirect_uri: str, return_to: str, link_user: str | None):
    """Begin a sign-in (or a link for `link_user`): the provider's URL and the state cookie."""
    state, nonce, verifier = generate_token(32), generate_token(32), generate_token(64)
    endpoint = discovery(chosen).get("authorization_endpoint")
    if not isinstance(endpoint, str):
        raise SignInFailed("provider")
    client = _client(chosen, redirect_uri)
    url, _ = client.create_authorization_url(
        endpoint, state=state, nonce=nonce, code_verifier=verifier
    )
    cookie = sign(
        STATE_SALT,
        {"p": chosen.name, "s": state, "n": nonce, "v": verifier, "r": return_to, "l": link_user},
    )
    return Authorization(url, cookie)


def _client(chosen: Provider, redirect_uri: str) -> OAuth2Session:
    return OAuth2Session(
        chosen.client_id,
        chosen.client_secret,
        scope="openid email profile",
        redirect_uri=redirect_uri,
        code_challenge_method="S256",
        token_endpoint_auth_method="client_secret_basic",
    )


def read_state(cookie: str | None, chosen: Provider, state: str | None) -> dict[str, Any]:
    """The attempt this browser started, if `state` is its state (else SignInFailed)."""
    attempt = unsign(STATE_SALT, cookie, STATE_LIFETIME_SECONDS)
    if (
        attempt is None
        or attempt.get("p") != chosen.name
        or not isinstance(state, str)
        or not hmac.compare_digest(str(attempt.get("s")), state)
    ):
        raise SignInFailed("state")
    return attempt


@dataclass(frozen=True, slots=True)
class Claims:
    """What the verified ID token says about the person."""

    subject: str
    email: str | None
    email_verified: bool
    name: str | None


def finish(chosen: Provider, redirect_uri: str, code: str | None, attempt: dict) -> Claims:
    """Exchange the code (with the PKCE verifier) and verify the ID token it brings."""
    if not code:
        raise SignInFailed("denied")
    document = discovery(chosen)
    client = _client(chosen, redirect_uri)
    try:
        token = client.fetch_token(
            document["token_endpoint"],
            code=code,
            code_verifier=attempt["v"],
            timeout=HTTP_TIMEOUT_SECONDS,
        )
    except Exception:  # noqa: BLE001 - any failure of the exchange (HTTP, OAuth error, JSON)
        raise SignInFailed("provider") from None
    id_token = token.get("id_token") if isinstance(token, dict) else None
    if not isinstance(id_token, str) or not isinstance(document.get("jwks_uri"), str):
        raise SignInFailed("id_token")
    return verify_id_token(chosen, id_token, _get_json(document["jwks_uri"]), attempt["n"])


def verify_id_token(chosen: Provider, id_token: str, jwks: dict, nonce: str) -> Claims:
    """Check the ID token's signature against the issuer's keys and its claims."""
    registry = jwt.JWTClaimsRegistry(
        now=lambda: int(clock.now().timestamp()),
        iss={"essential": True, "value": chosen.issuer},
        aud={"essential": True, "value": chosen.client_id},
        exp={"essential": True},
        sub={"essential": True},
        nonce={"essential": True, "value": nonce},
    )
    try:
        claims = jwt.decode(id_token, KeySet.import_key_set(jwks), ID_TOKEN_ALGORITHMS).claims
        registry.validate(claims)
    except (JoseError, ValueError, TypeError, KeyError):
        raise SignInFailed("id_token") from None
    audience = claims["aud"]
    if isinstance(audience, list) and len(audience) > 1 and claims.get("azp") != chosen.client_id:
        raise SignInFailed("id_token")
    email = claims.get("email")
    name = claims.get("name")
    return Claims(
        subject=str(claims["sub"]),
        email=email if isinstance(email, str) else None,
        email_verified=claims.get("email_verified") is True,
        name=name if isinstance(name, str) else None,
    )
