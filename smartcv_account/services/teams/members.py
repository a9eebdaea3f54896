"""A team's members: listing them, changing roles, removing someone and leaving.

Owners change any role; admins move people between `admin` and `member` only, never an
owner's. An owner or admin removes someone of their rank or below (admins cannot remove
owners); anyone may remove themselves, which is leaving. The last owner can neither leave, be
removed nor lose the role.
"""

from __future__ import annotations

import re

import sqlalchemy as sa

from ...errors import ApiError, field_error
from ...extensions import db
from ...models import Team, TeamMember, User
from ...principal import Principal
from .. import notices
from ..locking import lock_user
from . import access, events
from .views import MemberView, members_of

USER_ID = re.compile(r"user_[0-9a-f]{24}")


def list_members(principal: Principal, public_id: str) -> list[MemberView]:
    """Return the team's members (any member may look)."""
    team, _ = access.team_of_member(principal.id, public_id)
    return members_of(team)


def _target(team: Team, user_public_id: str) -> tuple[User, TeamMember]:
    """The member `user_public_id` of `team` (their user row read, not locked), or 404."""
    user = None
    if USER_ID.fullmatch(user_public_id):
        user = db.session.scalar(sa.select(User).where(User.public_id == user_public_id))
    member = access.membership(team, user.id) if user is not None else None
    if member is None:
        raise field_error("NOT_A_MEMBER", "This user is not a member of the team.", "userId")
    return user, member


def _last_owner(team: Team, member: TeamMember) -> bool:
    """Tell whether `member` is the team's only owner."""
    if member.role != "owner":
        return False
    owners = db.session.scalar(
        sa.select(sa.func.count())
        .select_from(TeamMember)
        .where(TeamMember.team_id == team.id, TeamMember.role == "owner")
    )
    return owners <= 1


def _last_owner_error() -> ApiError:
    """The refusal to leave a team without an owner."""
    return field_error(
        "LAST_OWNER", "A team needs an owner: make someone else an owner first.", "userId"
    )


def change_role(principal: Principal, public_id: str, user_public_id: str, role: str) -> MemberView:
    """Give a member another role, within what the caller's own role allows."""
    actor = lock_user(principal)
    team, mine = access.team_of_member(
        actor.id, public_id, access.MANAGERS, "changing roles", lock=True
    )
    user, member = _target(team, user_public_id)
    if mine.role == "admin" and "owner" in (member.role, role):
        raise access.forbidden("changing an owner's role or making an owner")
    if member.role != role:
        if _last_owner(team, member):
            raise _last_owner_error()
        details = {"userId": user.public_id, "from": member.role, "to": role}
        member.role = role
        events.record(team.id, actor.id, "role_changed", details)
    return MemberView(user.public_id, user.name, user.email, member.role, member.joined_at)


def remove_member(principal: Principal, public_id: str, user_public_id: str) -> None:
    """Remove a member (of the caller's rank or below), or leave when it is the caller.

    The removed user's row is not locked (services/teams/__init__.py): their usage calls read
    the membership as it stands and have the smaller limits once this commits.
    """
    actor = lock_user(principal)
    team, mine = access.team_of_member(actor.id, public_id, lock=True)
    if user_public_id == actor.public_id:
        if _last_owner(team, mine):
            raise _last_owner_error()
        db.session.delete(mine)
        events.record(team.id, actor.id, "member_left", {"userId": actor.public_id})
        return
    if mine.role not in access.MANAGERS:
        raise access.forbidden("removing members")
    user, member = _target(team, user_public_id)
    if access.rank(member.role) > access.rank(mine.role):
        raise access.forbidden("removing an owner")
    if _last_owner(team, member):
        raise _last_owner_error()
    db.session.delete(member)
    events.record(team.id, actor.id, "member_removed", {"userId": user.public_id})
    notices.removed_from_team(user, team.name)
