"""Teams: their members with roles, the invitations that bring people in, and their log."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from ..extensions import db
from .types import UTCDateTime

# Highest first: a rank's index is its power (services/teams/access.py).
TEAM_ROLES = ("owner", "admin", "member")
# The team audit log's event types (GET /api/teams/<id>/activity).
TEAM_ACTIVITY_TYPES = (
    "team_created",
    "team_updated",
    "member_invited",
    "invitation_revoked",
    "member_joined",
    "member_removed",
    "member_left",
    "role_changed",
    "plan_assigned",
)


class Team(db.Model):
    """A team: a name, branding, and the plan an operator assigned with its seats."""

    __tablename__ = "teams"

    id: Mapped[int] = mapped_column(primary_key=True)
    public_id: Mapped[str] = mapped_column(sa.String(40), unique=True)
    name: Mapped[str] = mapped_column(sa.String(100))
    # plan_free or plan_enterprise, set by `flask assign-plan --team`; every member gets its
    # limits when it beats their own plan (rules/entitlement.py).
    plan_id: Mapped[str] = mapped_column(sa.ForeignKey("plans.id"))
    # Members plus pending invitations never exceed it (services/teams/seats.py).
    seats: Mapped[int] = mapped_column(default=1)
    branding_display_name: Mapped[str | None] = mapped_column(sa.String(100))
    branding_logo_url: Mapped[str | None] = mapped_column(sa.String(500))
    branding_primary_color: Mapped[str | None] = mapped_column(sa.String(7))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)

    def __repr__(self) -> str:
        return f"<Team {self.public_id} {self.plan_id} seats={self.seats}>"


class TeamMember(db.Model):
    """A user's membership of a team, with their role.

    No `id` column, on purpose: the entitlement rule's SQL form reads this table inside the
    usage call's RETURNING clause, where the users row's `id` is written without its table
    name and would otherwise mean this table's (rules/entitlement.py).
    """

    __tablename__ = "team_members"

    team_id: Mapped[int] = mapped_column(
        sa.ForeignKey("teams.id", ondelete="CASCADE"), primary_key=True
    )
    user_id: Mapped[int] = mapped_column(
        sa.ForeignKey("users.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    role: Mapped[str] = mapped_column(sa.String(10))
    joined_at: Mapped[datetime] = mapped_column(UTCDateTime)

    def __repr__(self) -> str:
        return f"<TeamMember team={self.team_id} user={self.user_id} {self.role}>"


class TeamInvitation(db.Model):
    """An emailed invitation; its token is kept only as a SHA-256 (services/tokens.py)."""

    __tablename__ = "team_invitations"

    id: Mapped[int] = mapped_column(primary_key=True)
    public_id: Mapped[str] = mapped_column(sa.String(40), unique=True)
    team_id: Mapped[int] = mapped_column(sa.ForeignKey("teams.id", ondelete="CASCADE"), index=True)
    email: Mapped[str] = mapped_column(sa.String(254))
    role: Mapped[str] = mapped_column(sa.String(10))
    token_hash: Mapped[str] = mapped_column(sa.String(64), unique=True)
    invited_by_user_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("users.id", ondelete="SET NULL")
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    accepted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    def __repr__(self) -> str:
        return f"<TeamInvitation {self.public_id} team={self.team_id} {self.role}>"


class TeamEvent(db.Model):
    """One event of a team's audit log; rows are only inserted, never updated but to erase
    a deleted actor."""

    __tablename__ = "team_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    public_id: Mapped[str] = mapped_column(sa.String(40), unique=True)
    team_id: Mapped[int] = mapped_column(sa.ForeignKey("teams.id", ondelete="CASCADE"))
    # Who did it; None for an operator's command or a deleted account.
    actor_user_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("users.id", ondelete="SET NULL"), index=True
    )
    type: Mapped[str] = mapped_column(sa.String(40))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    ip_address: Mapped[str | None] = mapped_column(sa.String(45))
    user_agent: Mapped[str | None] = mapped_column(sa.String(512))
    details: Mapped[dict[str, Any]] = mapped_column(sa.JSON, default=dict)

    __table_args__ = (sa.Index("ix_team_events_team_created", "team_id", "created_at", "id"),)

    def __repr__(self) -> str:
        return f"<TeamEvent {self.public_id} {self.type} team={self.team_id}>"
