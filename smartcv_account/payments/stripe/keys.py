"""Idempotency keys on Stripe requests: the caller's, or one derived from what is created."""

from __future__ import annotations

import hashlib


def key_options(idempotency_key: str | None) -> dict[str, str] | None:
    """Return request options carrying the idempotency key, when there is one."""
    return {"idempotency_key": idempotency_key} if idempotency_key else None


def stable_key(kind: str, *parts: str) -> str:
    """Return a stable idempotency key for creating `kind` from `parts`.

    The parameters' digest is part of the key because Stripe rejects a reused key whose
    parameters differ (for 24 hours), which a corrected catalogue entry would otherwise hit.
    """
    digest = hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:16]
    return f"smartcv-{kind}-{parts[0]}-{digest}"
