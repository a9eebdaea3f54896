"""Teams as the API shows them: a team with the reader's role, members, invitations, events,
and a user's memberships (the account's `teams`, the export)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from ...extensions import db
from ...models import Team, TeamEvent, TeamInvitation, TeamMember, User
from .. import plans
from .seats import members_count


@dataclass(frozen=True, slots=True)
class TeamView:
    """A team as a member (with their role) or another SmartCV service (role None) sees it."""

    id: str
    name: str
    role: str | None
    subscription_type: str
    seats: int
    members_count: int
    branding: dict[str, str | None]
    created_at: datetime


@dataclass(frozen=True, slots=True)
class MemberView:
    """A member as the team's members see them."""

    user_id: str
    name: str
    email: str
    role: str
    joined_at: datetime


@dataclass(frozen=True, slots=True)
class InvitationView:
    """A pending invitation as the team's owners and admins see it."""

    id: str
    email: str
    role: str
    expires_at: datetime
    invited_by: str | None


@dataclass(frozen=True, slots=True)
class Membership:
    """One team of a user: what the account and the export show, and the team's plan type."""

    id: str
    name: str
    role: str
    joined_at: datetime
    plan_type: str


@dataclass(frozen=True, slots=True)
class TeamEventView:
    """One event of the team's log, with who did it (None: an operator or a deleted account)."""

    public_id: str
    type: str
    created_at: datetime
    ip_address: str | None
    user_agent: str | None
    details: dict[str, Any]
    actor_id: str | None


def branding(team: Team) -> dict[str, str | None]:
    """The team's branding: display name, logo URL and primary colour, each possibly None."""
    return {
        "display_name": team.branding_display_name,
        "logo_url": team.branding_logo_url,
        "primary_color": team.branding_primary_color,
    }


def team_view(team: Team, role: str | None, count: int | None = None) -> TeamView:
    """Show `team` to a reader with `role`; `count` is its members (read when not given)."""
    return TeamView(
        id=team.public_id,
        name=team.name,
        role=role,
        subscription_type=plans.plan_type(team.plan_id),
        seats=team.seats,
        members_count=members_count(team.id) if count is None else count,
        branding=branding(team),
        created_at=team.created_at,
    )


def teams_of(user_id: int) -> list[TeamView]:
    """Every team of the user with their role and its member count, in one statement."""
    count = (
        sa.select(sa.func.count())
        .select_from(TeamMember)
        .where(TeamMember.team_id == Team.id)
        .correlate(Team)
        .scalar_subquery()
    )
    rows = db.session.execute(
        sa.select(Team, TeamMember.role, count.label("count"))
        .join(TeamMember, TeamMember.team_id == Team.id)
        .where(TeamMember.user_id == user_id)
        .order_by(TeamMember.joined_at, Team.id)
    )
    return [team_view(row.Team, row.role, row.count) for row in rows]


def memberships(user_id: int) -> list[Membership]:
    """The user's teams with their role and the team's plan type, oldest membership first."""
    rows = db.session.execute(
        sa.select(Team.public_id, Team.name, Team.plan_id, TeamMember.role, TeamMember.joined_at)
        .join(TeamMember, TeamMember.team_id == Team.id)
        .where(TeamMember.user_id == user_id)
        .order_by(TeamMember.joined_at, Team.id)
    )
    return [
        Membership(row.public_id, row.name, row.role, row.joined_at, plans.plan_type(row.plan_id))
        for row in rows
    ]


def members_of(team: Team) -> list[MemberView]:
    """The team's members, oldest first."""
    rows = db.session.execute(
        sa.select(User.public_id, User.name, User.email, TeamMember.role, TeamMember.joined_at)
        .join(TeamMember, TeamMember.user_id == User.id)
        .where(TeamMember.team_id == team.id)
        .order_by(TeamMember.joined_at, User.id)
    )
    return [MemberView(*row) for row in rows]


def invitation_view(invitation: TeamInvitation, invited_by: str | None) -> InvitationView:
    """Show an invitation; `invited_by` is the inviter's public id."""
    return InvitationView(
        id=invitation.public_id,
        email=invitation.email,
        role=invitation.role,
        expires_at=invitation.expires_at,
        invited_by=invited_by,
    )


def event_views(events: list[TeamEvent]) -> list[TeamEventView]:
    """Show a page of team events with their actors' public ids (one statement)."""
    actor_ids = {event.actor_user_id for event in events if event.actor_user_id is not None}
    actors = {}
    if actor_ids:
        rows = db.session.execute(sa.select(User.id, User.public_id).where(User.id.in_(actor_ids)))
        actors = {row.id: row.public_id for row in rows}
    return [
        TeamEventView(
            public_id=event.public_id,
            type=event.type,
            created_at=event.created_at,
            ip_address=event.ip_address,
            user_agent=event.user_agent,
            details=event.details,
            actor_id=actors.get(event.actor_user_id),
        )
        for event in events
    ]
