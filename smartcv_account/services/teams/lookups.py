"""What other SmartCV services ask about teams (the internal API): a team, and a member's role."""

from __future__ import annotations

import sqlalchemy as sa

from ...errors import ApiError, field_error
from ...extensions import db
from ...models import User
from .. import plans
from . import access
from .members import USER_ID
from .views import branding


def team(public_id: str) -> dict:
    """Return a team's name, branding, plan type and seats, or TEAM_NOT_FOUND."""
    found = access.find_team(public_id)
    if found is None:
        raise ApiError("TEAM_NOT_FOUND", "No team has this id.")
    return {
        "id": found.public_id,
        "name": found.name,
        "branding": branding(found),
        "subscription_type": plans.plan_type(found.plan_id),
        "seats": found.seats,
    }


def role(team_public_id: str, user_public_id: str) -> dict:
    """Return the role of a user in a team, or NOT_A_MEMBER (TEAM_NOT_FOUND: no such team)."""
    found = access.find_team(team_public_id)
    if found is None:
        raise ApiError("TEAM_NOT_FOUND", "No team has this id.")
    user_id = None
    if USER_ID.fullmatch(user_public_id):
        user_id = db.session.scalar(sa.select(User.id).where(User.public_id == user_public_id))
    member = access.membership(found, user_id) if user_id is not None else None
    if member is None:
        raise field_error("NOT_A_MEMBER", "This user is not a member of the team.", "userId")
    return {"role": member.role}
