"""A team's life: creating one, reading it, changing its name and branding, deleting it."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from ... import clock
from ...catalogue import FREE_PLAN_ID
from ...errors import ApiError
from ...extensions import db
from ...models import Team, TeamMember
from ...principal import Principal
from ..identity import new_public_id
from ..locking import lock_user
from ..reauth import confirm_owner
from . import access, events
from .views import TeamView, team_view, teams_of

BRANDING_COLUMNS = {
    "display_name": "branding_display_name",
    "logo_url": "branding_logo_url",
    "primary_color": "branding_primary_color",
}


def create_team(principal: Principal, name: str) -> TeamView:
    """Create a team on the free plan with one seat, its creator its owner."""
    user = lock_user(principal)
    if user.email_verified_at is None:
        raise ApiError("EMAIL_NOT_VERIFIED", "Verify your email address before creating a team.")
    now = clock.now()
    team = Team(
        public_id=new_public_id("team"),
        name=name,
        plan_id=FREE_PLAN_ID,
        seats=1,
        created_at=now,
        updated_at=now,
    )
    db.session.add(team)
    db.session.flush()
    db.session.add(TeamMember(team_id=team.id, user_id=user.id, role="owner", joined_at=now))
    events.record(team.id, user.id, "team_created", {"name": name})
    return team_view(team, "owner", 1)


def list_teams(principal: Principal) -> list[TeamView]:
    """Return the teams the user belongs to, each with the user's role."""
    return teams_of(principal.id)


def get_team(principal: Principal, public_id: str) -> TeamView:
    """Return a team the user belongs to, with their role."""
    team, member = access.team_of_member(principal.id, public_id)
    return team_view(team, member.role)


def update_team(principal: Principal, public_id: str, changes: dict[str, Any]) -> TeamView:
    """Change the name and branding (only the fields sent; branding merges key by key)."""
    user = lock_user(principal)
    team, member = access.team_of_member(
        user.id, public_id, access.MANAGERS, "changing the team", lock=True
    )
    changed = []
    if "name" in changes and changes["name"] != team.name:
        team.name = changes["name"]
        changed.append("name")
    for key, value in changes.get("branding", {}).items():
        column = BRANDING_COLUMNS[key]
        if getattr(team, column) != value:
            setattr(team, column, value)
            changed.append(f"branding.{key}")
    if changed:
        team.updated_at = clock.now()
        events.record(team.id, user.id, "team_updated", {"fields": changed})
    return team_view(team, member.role)


def delete_team(principal: Principal, public_id: str, current_password: str | None) -> None:
    """Delete a team after checking the owner's password (an owner without one: a recent
    sign-in): its members lose its plan at once."""
    user = lock_user(principal)
    team, _ = access.team_of_member(user.id, public_id, ("owner",), "deleting the team", lock=True)
    confirm_owner(user, principal, "team_deletion", password=current_password)
    # Members, invitations and the log go with it (ON DELETE CASCADE).
    db.session.execute(sa.delete(Team).where(Team.id == team.id))
