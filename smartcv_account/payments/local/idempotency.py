"""Idempotency keys at the local provider: a mutating request is answered once per key.

Answers are stored as JSON, so a ProviderSubscription is encoded before it is kept and
rebuilt when the key comes back.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import asdict
from datetime import datetime
from typing import Any

from ... import clock
from ...extensions import db
from ..base import CardDetails, IdempotencyKeyReused, ProviderSubscription
from .models import LocalIdempotencyKey

# The ProviderSubscription fields that hold a datetime (stored as ISO 8601 text).
_DATETIME_FIELDS = (
    "current_period_start",
    "current_period_end",
    "trial_end",
    "pending_expires_at",
    "next_payment_attempt",
)


def once(
    key: str | None,
    operation: str,
    subscription_id: str,
    params: dict[str, Any],
    run: Callable[[], dict[str, Any]],
) -> dict[str, Any]:
    """Answer a mutating request once per idempotency key, as Stripe does.

    The same key with the same parameters returns the stored answer and does nothing
    again; with other parameters it is refused. The key is kept in the caller's
    transaction, so a change the service rolls back forgets its key too.
    """
    if key is None:
        return run()
    request = json.dumps([operation, subscription_id, params], sort_keys=True)
    digest = hashlib.sha256(request.encode()).hexdigest()
    stored = db.session.get(LocalIdempotencyKey, key)
    if stored is not None:
        if stored.request_digest != digest:
            raise IdempotencyKeyReused(f"idempotency key {key!r} reused with other parameters")
        return stored.response
    response = run()
    db.session.add(
        LocalIdempotencyKey(
            key=key, request_digest=digest, response=response, created_at=clock.now()
        )
    )
    db.session.flush()
    return response


def encode(subscription: ProviderSubscription) -> dict[str, Any]:
    """Turn a ProviderSubscription into JSON (a stored idempotent answer)."""
    return json.loads(json.dumps(asdict(subscription), default=datetime.isoformat))


def decode(data: dict[str, Any]) -> ProviderSubscription:
    """Rebuild a ProviderSubscription stored by `encode`."""
    values = dict(data)
    for key in _DATETIME_FIELDS:
        if values.get(key) is not None:
            values[key] = datetime.fromisoformat(values[key])
    if values.get("payment_method") is not None:
        values["payment_method"] = CardDetails(**values["payment_method"])
    return ProviderSubscription(**values)
