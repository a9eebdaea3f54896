"""The team's audit log: events recorded in the transaction of the change they describe."""

from __future__ import annotations

from typing import Any

from ... import client
from ...extensions import db
from ...models import TEAM_ACTIVITY_TYPES, TeamEvent
from ...principal import Principal
from .. import activity
from . import access
from .views import event_views


def record(
    team_id: int,
    actor_user_id: int | None,
    event_type: str,
    details: dict[str, Any] | None = None,
    caller: client.Client | None = None,
) -> TeamEvent:
    """Add an event to the team's log in the current transaction (the caller commits).

    `actor_user_id` is None for an operator's command; `caller` defaults to the request's client.
    """
    event = TeamEvent(
        team_id=team_id,
        actor_user_id=actor_user_id,
        **activity.event_columns(TEAM_ACTIVITY_TYPES, event_type, details, caller),
    )
    db.session.add(event)
    return event


def team_log(principal: Principal, public_id: str, limit: int, before: str | None) -> dict:
    """Return a page of the team's log, newest first, paged as the account's activity (owners
    and admins only)."""
    team, _ = access.team_of_member(
        principal.id, public_id, access.MANAGERS, "reading the team's log"
    )
    page = activity.page_of(TeamEvent, TeamEvent.team_id == team.id, limit, before)
    return {"events": event_views(page.events), "next_cursor": page.next_cursor}
