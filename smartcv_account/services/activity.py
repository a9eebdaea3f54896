"""The activity log: events recorded in the transaction of the change they describe.

`record` only adds a row to the session; the service that made the change commits it with
the change, so an event exists exactly when its change does. A refused login is the exception
that proves the rule: nothing else changes, and `accounts.login` commits the event before it
answers 401. Attempts refused by a rate limit never reach a service and are not recorded.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from .. import client, clock
from ..errors import validation_error
from ..extensions import db
from ..models import ACTIVITY_TYPES, ActivityEvent


def record(
    user_id: int,
    event_type: str,
    details: dict[str, Any] | None = None,
    caller: client.Client | None = None,
) -> ActivityEvent:
    """Add an event for the user to the current transaction (the caller commits).

    `caller` defaults to the client of the request being served; pass `client.NOBODY` for what
    the provider or an operator did (a webhook's address is the provider's, not the user's).
    """
    event = ActivityEvent(
        user_id=user_id, **event_columns(ACTIVITY_TYPES, event_type, details, caller)
    )
    db.session.add(event)
    return event


def event_columns(
    types: tuple[str, ...],
    event_type: str,
    details: dict[str, Any] | None,
    caller: client.Client | None,
) -> dict[str, Any]:
    """The columns every event log shares (the account's, a team's): a new public id, the
    type (one of `types`), now, the caller's address and user agent, the details."""
    if event_type not in types:
        raise ValueError(f"unknown activity type {event_type!r}")
    caller = client.current() if caller is None else caller
    return {
        "public_id": f"evt_{secrets.token_hex(12)}",
        "type": event_type,
        "created_at": clock.now(),
        "ip_address": caller.ip_address,
        "user_agent": caller.user_agent,
        "details": details or {},
    }


@dataclass(frozen=True, slots=True)
class ActivityPage:
    """One page of a user's events, newest first, and the cursor of the next page."""

    events: list[ActivityEvent]
    next_cursor: str | None


def page(user_id: int, limit: int, before: str | None) -> ActivityPage:
    """Return up to `limit` events of the user older than the cursor event `before`."""
    return page_of(ActivityEvent, ActivityEvent.user_id == user_id, limit, before)


def page_of(model, owned: sa.ColumnElement[bool], limit: int, before: str | None) -> ActivityPage:
    """Return up to `limit` rows of an event log (`model`: the account's or a team's) matching
    `owned`, older than the cursor event `before` (newest first).

    The cursor is the public id of the last event of the previous page; paging continues
    strictly below its (created_at, id), so events recorded meanwhile appear only on a fresh
    first page and never shift or repeat the pages that follow.
    """
    query = (
        sa.select(model)
        .where(owned)
        .order_by(model.created_at.desc(), model.id.desc())
        .limit(limit + 1)
    )
    if before is not None:
        anchor = db.session.execute(
            sa.select(model.created_at, model.id).where(model.public_id == before, owned)
        ).first()
        if anchor is None:
            raise validation_error({"before": ["Unknown cursor: pass a nextCursor as given."]})
        query = query.where(
            sa.or_(
                model.created_at < anchor.created_at,
                sa.and_(model.created_at == anchor.created_at, model.id < anchor.id),
            )
        )
    events = list(db.session.scalars(query))
    more = len(events) > limit
    events = events[:limit]
    return ActivityPage(events, events[-1].public_id if more else None)


def prune(older_than: timedelta, batch_size: int) -> int:
    """Delete events older than `older_than`, `batch_size` rows per transaction; return how many.

    Small batches, each committed, keep every transaction short: writers recording new events
    never wait long behind the prune, and no lock is held across the whole table.
    """
    cutoff: datetime = clock.now() - older_than
    total = 0
    while True:
        batch = (
            sa.select(ActivityEvent.id)
            .where(ActivityEvent.created_at < cutoff)
            .order_by(ActivityEvent.created_at)
            .limit(batch_size)
        )
        deleted = db.session.execute(
            sa.delete(ActivityEvent).where(ActivityEvent.id.in_(batch))
        ).rowcount
        db.session.commit()
        total += deleted
        if deleted < batch_size:
            return total
