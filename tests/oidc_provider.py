"""A real OpenID Connect provider on loopback, for the social sign-in tests.

It serves what a provider such as Google serves: the discovery document, its signing keys
(JWKS, a real RSA key), an authorization endpoint that sends the browser back with a code,
and a token endpoint that checks the client's secret and the PKCE verifier (S256) before it
hands out an RS256-signed ID token. `fault` makes the next ID tokens bad in one way (signed
by another key, another issuer, another audience, expired, another nonce), as an attacker or
a broken provider would.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import urlencode

from joserfc import jwt
from joserfc.jwk import KeySet, RSAKey
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

CLIENT_ID = "smartcv-test-client"
CLIENT_SECRET = "test-client-secret-0123456789"
FAULTS = ("signature", "iss", "aud", "exp", "nonce")


class Provider:
    """The provider's state: its keys, the codes it issued and the person who signs in."""

    def __init__(self) -> None:
        self.issuer = ""
        self.key = RSAKey.generate_key(2048, parameters={"kid": "signing-key"})
        self.other_key = RSAKey.generate_key(2048, parameters={"kid": "signing-key"})
        self.codes: dict[str, dict] = {}
        self.person = {"sub": "person-1", "email": "ada@example.com", "email_verified": True}
        self.fault: str | None = None
        self.token_requests: list[dict] = []
        self.authorize_requests: list[dict] = []

    def __call__(self, environ, start_response):
        request = Request(environ)
        routes = {
            "/.well-known/openid-configuration": self.discovery,
            "/jwks": self.jwks,
            "/authorize": self.authorize,
            "/token": self.token,
        }
        handler = routes.get(request.path)
        response = handler(request) if handler else Response("not found", 404)
        return response(environ, start_response)

    def discovery(self, _request: Request) -> Response:
        return _json(
            {
                "issuer": self.issuer,
                "authorization_endpoint": self.issuer + "/authorize",
                "token_endpoint": self.issuer + "/token",
                "jwks_uri": self.issuer + "/jwks",
                "response_types_supported": ["code"],
                "subject_types_supported": ["public"],
                "id_token_signing_alg_values_supported": ["RS256"],
                "code_challenge_methods_supported": ["S256"],
            }
        )

    def jwks(self, _request: Request) -> Response:
        return _json(KeySet([self.key]).as_dict(private=False))

    def authorize(self, request: Request) -> Response:
        """Approve at once (the person is signed in at the provider) and send back a code."""
        args = request.args.to_dict()
        self.authorize_requests.append(args)
        if args.get("client_id") != CLIENT_ID or args.get("response_type") != "code":
            return Response("bad request", 400)
        code = secrets.token_urlsafe(16)
        self.codes[code] = {**args, "person": dict(self.person)}
        query = urlencode({"code": code, "state": args.get("state", "")})
        return Response(status=302, headers={"Location": f"{args['redirect_uri']}?{query}"})

    def token(self, request: Request) -> Response:
        form = request.form.to_dict()
        self.token_requests.append(form)
        auth = request.authorization
        if auth is None or (auth.username, auth.password) != (CLIENT_ID, CLIENT_SECRET):
            return _json({"error": "invalid_client"}, 401)
        issued = self.codes.pop(form.get("code", ""), None)
        if issued is None or form.get("redirect_uri") != issued["redirect_uri"]:
            return _json({"error": "invalid_grant"}, 400)
        verifier = form.get("code_verifier", "").encode("ascii")
        challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier).digest()).rstrip(b"=")
        if issued.get("code_challenge_method") != "S256" or (
            challenge.decode("ascii") != issued.get("code_challenge")
        ):
            return _json({"error": "invalid_grant", "error_description": "PKCE"}, 400)
        return _json(
            {
                "access_token": secrets.token_urlsafe(16),
                "token_type": "Bearer",
                "expires_in": 3600,
                "id_token": self.id_token(issued),
            }
        )

    def id_token(self, issued: dict) -> str:
        now = int(time.time())
        claims = {
            "iss": self.issuer,
            "aud": CLIENT_ID,
            "iat": now,
            "exp": now + 300,
            "nonce": issued.get("nonce"),
            **issued["person"],
        }
        key = self.key
        if self.fault == "signature":
            key = self.other_key  # same key id, another key: only the signature tells
        elif self.fault == "iss":
            claims["iss"] = "https://impostor.example"
        elif self.fault == "aud":
            claims["aud"] = "another-client"
        elif self.fault == "exp":
            claims["iat"], claims["exp"] = now - 7200, now - 3600
        elif self.fault == "nonce":
            claims["nonce"] = "a-nonce-of-another-attempt"
        return jwt.encode({"alg": "RS256", "kid": "signing-key"}, claims, key)


def _json(document: dict, status: int = 200) -> Response:
    return Response(json.dumps(document), status=status, mimetype="application/json")


@contextmanager
def running_provider() -> Iterator[Provider]:
    """Serve a provider on a free loopback port for the duration."""
    provider = Provider()
    server = make_server("127.0.0.1", 0, provider, threaded=True)
    provider.issuer = f"http://127.0.0.1:{server.port}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield provider
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
