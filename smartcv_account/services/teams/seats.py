"""Seats: members plus pending invitations never exceed the team's seats.

Every change that adds to the count (an invitation, an acceptance) and the operator's change
of seats runs while its transaction holds the team's row (`access.team_of_member(lock=True)`,
`access.lock_teams`), so concurrent changes of one team are counted one after another.
"""

from __future__ import annotations

import sqlalchemy as sa

from ... import clock
from ...errors import ApiError
from ...extensions import db
from ...models import Team, TeamInvitation, TeamMember


def pending_condition() -> sa.ColumnElement[bool]:
    """The condition of an invitation that still holds a seat: not used, revoked or expired."""
    return sa.and_(
        TeamInvitation.accepted_at.is_(None),
        TeamInvitation.revoked_at.is_(None),
        TeamInvitation.expires_at > clock.now(),
    )


def members_count(team_id: int) -> int:
    """How many members the team has."""
    return db.session.scalar(
        sa.select(sa.func.count()).select_from(TeamMember).where(TeamMember.team_id == team_id)
    )


def seats_taken(team_id: int) -> int:
    """Members plus pending invitations, in one statement."""
    pending = (
        sa.select(sa.func.count())
        .select_from(TeamInvitation)
        .where(TeamInvitation.team_id == team_id, pending_condition())
        .scalar_subquery()
    )
    members = (
        sa.select(sa.func.count())
        .select_from(TeamMember)
        .where(TeamMember.team_id == team_id)
        .scalar_subquery()
    )
    return db.session.scalar(sa.select(members + pending))


def require_free_seat(team: Team, taken: int) -> None:
    """Refuse with SEAT_LIMIT_REACHED unless one more fits beside `taken`."""
    if taken + 1 > team.seats:
        raise ApiError(
            "SEAT_LIMIT_REACHED",
            f"Every seat of the team is taken by a member or a pending invitation"
            f" ({team.seats} seat{'s' * (team.seats != 1)}).",
            {"seats": team.seats},
        )
