"""Teams: creating them, reading and changing them, and accepting an invitation (/api/teams)."""

from flask import Blueprint
from flask_login import login_required

from ..openapi import Link, endpoint
from ..schemas.email import token_schema
from ..schemas.teams import (
    team_create_schema,
    team_delete_schema,
    team_schema,
    team_update_schema,
    teams_schema,
)
from ..services.teams import invitations, manage
from ..session_cookie import signed_in

bp = Blueprint("teams", __name__)

THIS_TEAM = {"path.team_id": "$response.body#/data/id"}
NOT_VISIBLE = ("TEAM_NOT_FOUND", "FORBIDDEN")


@bp.post("")
@login_required
@endpoint(
    team_schema,
    body=team_create_schema,
    status=201,
    errors=("EMAIL_NOT_VERIFIED",),
    links=(
        Link("get_team", "Read the team just created.", parameters=THIS_TEAM),
        Link("list_members", "List its members (the owner).", parameters=THIS_TEAM),
        Link("list_team_activity", "Read its log.", parameters=THIS_TEAM),
    ),
)
def create_team(fields):
    """Create a team; the signed-in user is its owner.

    Needs a session and a verified email. A new team is on the free plan with one seat (its
    owner); an operator puts it on ENTERPRISE with more seats. Returns the team.
    """
    return manage.create_team(signed_in(), fields["name"])


@bp.get("")
@login_required
@endpoint(teams_schema)
def list_teams():
    """List the teams the signed-in user belongs to, each with their role.

    Needs a session. Changes nothing.
    """
    return manage.list_teams(signed_in())


@bp.get("/<team_id>")
@login_required
@endpoint(team_schema, errors=("TEAM_NOT_FOUND",))
def get_team(team_id: str):
    """Return one team of the signed-in user.

    Needs a session and membership of the team (any role); another team is TEAM_NOT_FOUND.
    """
    return manage.get_team(signed_in(), team_id)


@bp.put("/<team_id>")
@login_required
@endpoint(team_schema, body=team_update_schema, errors=NOT_VISIBLE)
def update_team(changes, team_id: str):
    """Change the team's name and branding (only the fields sent).

    Needs the role owner or admin. `branding` is merged key by key; null clears a key. Other
    SmartCV services apply the branding for ENTERPRISE teams. Returns the team.
    """
    return manage.update_team(signed_in(), team_id, changes)


@bp.delete("/<team_id>")
@login_required
@endpoint(
    None,
    body=team_delete_schema,
    errors=(*NOT_VISIBLE, "INVALID_PASSWORD", "RATE_LIMITED"),
)
def delete_team(fields, team_id: str):
    """Delete the team: every member loses its plan at once.

    Needs the role owner and the current password (wrong answers count toward the account's
    guessing limit). Members, invitations and the team's log go with it.
    """
    manage.delete_team(signed_in(), team_id, fields.get("current_password"))


@bp.post("/invitations/accept")
@login_required
@endpoint(
    team_schema,
    body=token_schema,
    errors=("INVALID_TOKEN", "INVITATION_EMAIL_MISMATCH", "ALREADY_MEMBER", "SEAT_LIMIT_REACHED"),
)
def accept_invitation(fields):
    """Join a team with an invitation link's token.

    Needs a session whose verified email is the invited address. An unknown, used, revoked or
    expired token is INVALID_TOKEN. Returns the team with the role the invitation gave.
    """
    return invitations.accept(signed_in(), fields["token"])
