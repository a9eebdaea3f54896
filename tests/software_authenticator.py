"""A passkey held in software (P-256, as a platform authenticator's): what it stores for the
service, and the assertions it signs. For the tests that need many assertions at once over
HTTP (races); the browser test uses Chromium's own virtual authenticator."""

from __future__ import annotations

import base64
import hashlib
import json
import secrets

import cbor2
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

UP_UV = 0x05  # user present, user verified


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class SoftwarePasskey:
    """One credential: its id, its COSE public key, and a sign counter."""

    def __init__(self, rp_id: str, origin: str, user_handle: bytes) -> None:
        self.rp_id, self.origin, self.user_handle = rp_id, origin, user_handle
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.credential_id = b64url(secrets.token_bytes(32))
        self.sign_count = 0

    def cose_public_key(self) -> bytes:
        numbers = self.key.public_key().public_numbers()
        return cbor2.dumps(
            {
                1: 2,
                3: -7,
                -1: 1,
                -2: numbers.x.to_bytes(32, "big"),
                -3: numbers.y.to_bytes(32, "big"),
            }
        )

    def assertion(self, challenge: str) -> dict:
        """Sign `challenge` (base64url, from the service's options) as navigator.credentials.get."""
        self.sign_count += 1
        client_data = json.dumps(
            {
                "type": "webauthn.get",
                "challenge": challenge,
                "origin": self.origin,
                "crossOrigin": False,
            }
        ).encode("utf-8")
        authenticator_data = (
            hashlib.sha256(self.rp_id.encode("ascii")).digest()
            + bytes([UP_UV])
            + self.sign_count.to_bytes(4, "big")
        )
        signature = self.key.sign(
            authenticator_data + hashlib.sha256(client_data).digest(), ec.ECDSA(hashes.SHA256())
        )
        return {
            "id": self.credential_id,
            "rawId": self.credential_id,
            "type": "public-key",
            "response": {
                "clientDataJSON": b64url(client_data),
                "authenticatorData": b64url(authenticator_data),
                "signature": b64url(signature),
                "userHandle": b64url(self.user_handle),
            },
            "clientExtensionResults": {},
            "authenticatorAttachment": "platform",
        }
