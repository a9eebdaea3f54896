"""Who may do what in a team: finding a team for one of its members, roles, and team locks."""

from __future__ import annotations

import re

import sqlalchemy as sa

from ...errors import ApiError
from ...extensions import db
from ...models import TEAM_ROLES, Team, TeamMember

TEAM_ID = re.compile(r"team_[0-9a-f]{24}")
MANAGERS = ("owner", "admin")


def not_found() -> ApiError:
    """The one answer for an unknown team and one the caller does not belong to."""
    return ApiError("TEAM_NOT_FOUND", "You belong to no team with this id.")


def forbidden(action: str) -> ApiError:
    """The answer to a member whose role does not allow `action`."""
    return ApiError("FORBIDDEN", f"Your role in this team does not allow {action}.")


def rank(role: str) -> int:
    """A role's power: owner 2, admin 1, member 0."""
    return len(TEAM_ROLES) - 1 - TEAM_ROLES.index(role)


def find_team(public_id: str, lock: bool = False) -> Team | None:
    """Return the team with this public id (locked until the commit with `lock`), or None."""
    if not TEAM_ID.fullmatch(public_id):
        return None  # not shaped like an id: not looked up (a NUL would be a database error)
    statement = sa.select(Team).where(Team.public_id == public_id)
    if lock:
        statement = statement.with_for_update().execution_options(populate_existing=True)
    return db.session.scalar(statement)


def membership(team: Team, user_id: int) -> TeamMember | None:
    """Return the user's membership of `team`, or None."""
    return db.session.get(TeamMember, (team.id, user_id), populate_existing=True)


def team_of_member(
    user_id: int,
    public_id: str,
    roles: tuple[str, ...] = TEAM_ROLES,
    action: str = "this",
    lock: bool = False,
) -> tuple[Team, TeamMember]:
    """Return the team `public_id` and the user's membership of it, or refuse.

    A team the user does not belong to is TEAM_NOT_FOUND, as an unknown one (its existence is
    not told to strangers); a member whose role is not in `roles` is FORBIDDEN. With `lock`
    the team's row is locked first (the caller holds its own user row already).
    """
    team = find_team(public_id, lock=lock)
    member = membership(team, user_id) if team is not None else None
    if member is None:
        raise not_found()
    if member.role not in roles:
        raise forbidden(action)
    return team, member


def lock_teams(team_ids: list[int]) -> list[Team]:
    """Lock several teams in ascending id (the one order every transaction uses)."""
    if not team_ids:
        return []
    return list(
        db.session.scalars(
            sa.select(Team)
            .where(Team.id.in_(team_ids))
            .order_by(Team.id)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
    )
