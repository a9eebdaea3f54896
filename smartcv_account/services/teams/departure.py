"""A user leaving SmartCV: teams they own alone hold the deletion back; the rest they leave.

Called by the account deletion while it holds the user's row, before anything is changed:
the teams the user belongs to are locked in ascending id (services/teams/__init__.py), then
judged. A team whose only member is the user goes with the account; a team where the user is
the only owner and others are members refuses the deletion (TEAM_OWNERSHIP_REQUIRED, the teams
named); every other membership ends.
"""

from __future__ import annotations

import sqlalchemy as sa

from ...errors import ApiError
from ...extensions import db
from ...models import Team, TeamEvent, TeamInvitation, TeamMember, User
from . import access


def leave_every_team(user: User) -> None:
    """Refuse if the user alone owns a team with others; else leave every team (no commit)."""
    team_ids = list(
        db.session.scalars(sa.select(TeamMember.team_id).where(TeamMember.user_id == user.id))
    )
    if team_ids:
        _leave(user, access.lock_teams(team_ids))
    # The team logs keep what happened, not who it was or where from (teams left earlier too).
    db.session.execute(
        sa.update(TeamEvent)
        .where(TeamEvent.actor_user_id == user.id)
        .values(actor_user_id=None, ip_address=None, user_agent=None)
    )
    db.session.execute(
        sa.update(TeamInvitation)
        .where(TeamInvitation.invited_by_user_id == user.id)
        .values(invited_by_user_id=None)
    )


def _leave(user: User, teams: list[Team]) -> None:
    """Judge the locked teams of the user; refuse, or leave them all (a solo team is deleted)."""
    counts = {
        row.team_id: row
        for row in db.session.execute(
            sa.select(
                TeamMember.team_id,
                sa.func.count().label("members"),
                sa.func.sum(sa.case((TeamMember.role == "owner", 1), else_=0)).label("owners"),
                sa.func.max(
                    sa.case((TeamMember.user_id == user.id, TeamMember.role), else_=None)
                ).label("role"),
            )
            .where(TeamMember.team_id.in_([team.id for team in teams]))
            .group_by(TeamMember.team_id)
        )
    }
    alone, held = [], []
    for team in teams:
        row = counts[team.id]
        if row.members == 1:
            alone.append(team.id)
        elif row.role == "owner" and row.owners == 1:
            held.append({"id": team.public_id, "name": team.name})
    if held:
        raise ApiError(
            "TEAM_OWNERSHIP_REQUIRED",
            "You are the only owner of teams with other members; make someone else an owner"
            " or remove the others first.",
            {"teams": held},
        )
    if alone:
        db.session.execute(sa.delete(Team).where(Team.id.in_(alone)))
    db.session.execute(sa.delete(TeamMember).where(TeamMember.user_id == user.id))
