"""Stripe's webhook signatures (`Stripe-Signature`, v1 scheme) and the decoding of event bodies.

Both gateways verify events here, as Stripe's libraries do.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import time
from typing import Any

from .errors import InvalidSignature, MalformedEvent

SIGNATURE_TOLERANCE_SECONDS = 300
# A Unix time in ASCII digits: `str.isdigit` also accepts `²` and `int()` refuses 4,301+ digits.
_TIMESTAMP = re.compile(r"[0-9]{1,12}")
# Stripe's events nest a few levels; anything much deeper is not one of them.
MAX_EVENT_DEPTH = 32
# Fields that hold an object's id in an event: a string (or null), never an object.
ID_FIELDS = frozenset(
    {"id", "customer", "subscription", "invoice", "payment_intent", "payment_method"}
    | {"default_payment_method"}
)


def sign_payload(payload: bytes, secret: str, timestamp: int | None = None) -> str:
    """Return a `Stripe-Signature` header value for `payload` (Stripe's v1 scheme)."""
    timestamp = int(time.time()) if timestamp is None else timestamp
    signed = f"{timestamp}.".encode() + payload
    digest = hmac.new(secret.encode("utf-8"), signed, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def parse_signature_header(header: str | None) -> tuple[int, list[str]]:
    """Split a `Stripe-Signature` header into its timestamp and v1 signatures.

    Anything but `t=<ASCII digits>` and at least one `v1=` is InvalidSignature, so no header a
    client can send reaches `int()` or a digest comparison in a shape they would fail on.
    """
    if not header:
        raise InvalidSignature("missing Stripe-Signature header")
    parts = [item.split("=", 1) for item in header.split(",") if "=" in item]
    timestamps = [value for key, value in parts if key.strip() == "t"]
    signatures = [value for key, value in parts if key.strip() == "v1" and value.isascii()]
    if len(timestamps) != 1 or not signatures or not _TIMESTAMP.fullmatch(timestamps[0]):
        raise InvalidSignature("malformed Stripe-Signature header")
    return int(timestamps[0]), signatures


def verify_signature(payload: bytes, header: str | None, secret: str) -> dict[str, Any]:
    """Check a `Stripe-Signature` header as Stripe's libraries do and return the decoded event."""
    timestamp, signatures = parse_signature_header(header)
    expected = sign_payload(payload, secret, timestamp).split("v1=", 1)[1].encode()
    if not any(hmac.compare_digest(expected, candidate.encode()) for candidate in signatures):
        raise InvalidSignature("signature does not match")
    if abs(time.time() - timestamp) > SIGNATURE_TOLERANCE_SECONDS:
        raise InvalidSignature("signature timestamp outside the tolerance")
    return decode_event(payload)


def decode_event(payload: bytes) -> dict[str, Any]:
    """Decode a verified event body, refusing any shape the handlers could trip over.

    The signature proves who sent it, not that it is well formed: the body must be UTF-8 JSON
    without lone surrogates, at most MAX_EVENT_DEPTH deep, with a string `id` and `type`, an
    object under `data.object`, and strings (or null) wherever Stripe puts an id.
    """
    try:
        event = json.loads(payload.decode("utf-8"))
    except (ValueError, RecursionError):
        raise MalformedEvent("payload is not JSON") from None
    _check_tree(event)
    if not isinstance(event, dict):
        raise MalformedEvent("payload is not an event")
    event_id, event_type, data = event.get("id"), event.get("type"), event.get("data")
    if not isinstance(event_id, str) or not 0 < len(event_id) <= 255:
        raise MalformedEvent("event id is not a string of 1 to 255 characters")
    if not isinstance(event_type, str) or not 0 < len(event_type) <= 100:
        raise MalformedEvent("event type is not a string of 1 to 100 characters")
    if not isinstance(data, dict) or not isinstance(data.get("object"), dict):
        raise MalformedEvent("event has no data.object")
    return event


def _check_tree(value: Any) -> None:
    """Refuse deep nesting, text that is not valid Unicode, and an object where an id belongs."""
    pending = [(value, 1)]
    while pending:
        item, depth = pending.pop()
        if depth > MAX_EVENT_DEPTH:
            raise MalformedEvent("event is nested too deeply")
        if isinstance(item, str):
            _check_text(item)
        elif isinstance(item, list):
            pending.extend((child, depth + 1) for child in item)
        elif isinstance(item, dict):
            for key, child in item.items():
                _check_text(key)
                if key in ID_FIELDS and child is not None and not isinstance(child, str):
                    raise MalformedEvent(f"{key} is not an id")
                pending.append((child, depth + 1))


def _check_text(text: str) -> None:
    """Refuse a string holding a lone surrogate (valid JSON, but no database can store it)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise MalformedEvent("event text is not valid Unicode") from None
