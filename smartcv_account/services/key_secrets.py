"""The API key secret's format: recognisable, checksummed, and stored only as a hash.

A secret reads `scv_` + 43 random base-62 characters (256 bits, from `secrets`) + a 6-character
base-62 checksum of them (CRC-32), 53 characters in all, as GitHub's `ghp_` tokens are made. The
prefix lets secret scanners spot a leaked key; the checksum lets them (and the verify call,
before any database work) tell a real-looking key from a random string with `scv_` in front.
Base 62 only (no `-` or `_` after the prefix), so a double-click selects the whole key.

Only the SHA-256 of the secret is stored: with 256 random bits, a fast hash is as safe as a
slow one, and the verify call can look a key up by it through a unique index.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import zlib

PREFIX = "scv_"
ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
RANDOM_LENGTH = 43  # 43 × log2(62) ≈ 256 bits
CHECKSUM_LENGTH = 6  # 62**6 > 2**32: any CRC-32 fits
# What a list shows of a secret so a person can tell keys apart.
SHOWN_LENGTH = 12
SHAPE = re.compile(rf"{PREFIX}([0-9A-Za-z]{{{RANDOM_LENGTH}}})([0-9A-Za-z]{{{CHECKSUM_LENGTH}}})")


def _base62(number: int, width: int) -> str:
    """Write `number` in base 62, padded with zeros to `width` characters."""
    digits = []
    while number:
        number, digit = divmod(number, 62)
        digits.append(ALPHABET[digit])
    return "".join(reversed(digits)).rjust(width, ALPHABET[0])


def _checksum(body: str) -> str:
    """The checksum of a secret's random part."""
    return _base62(zlib.crc32(body.encode()), CHECKSUM_LENGTH)


def new_secret() -> str:
    """Return a fresh secret."""
    body = "".join(secrets.choice(ALPHABET) for _ in range(RANDOM_LENGTH))
    return PREFIX + body + _checksum(body)


def well_formed(secret: str) -> bool:
    """Tell whether `secret` has the format and a matching checksum (it may still be unknown)."""
    match = SHAPE.fullmatch(secret)
    return match is not None and _checksum(match[1]) == match[2]


def secret_hash(secret: str) -> str:
    """The hex SHA-256 stored for a secret and looked up by the verify call."""
    return hashlib.sha256(secret.encode()).hexdigest()


def shown_prefix(secret: str) -> str:
    """The secret's first characters, which lists show."""
    return secret[:SHOWN_LENGTH]
