"""A team's members, invitations and log (/api/teams/<id>/…)."""

from flask import Blueprint
from flask_login import login_required

from ..openapi import endpoint
from ..schemas.lifecycle import activity_query_schema
from ..schemas.teams import (
    invitation_create_schema,
    invitation_schema,
    invitations_schema,
    member_schema,
    members_schema,
    role_change_schema,
    team_activity_page_schema,
)
from ..services.teams import events, invitations, members
from ..session_cookie import signed_in

bp = Blueprint("team_members", __name__)

NOT_VISIBLE = ("TEAM_NOT_FOUND", "FORBIDDEN")


@bp.get("/<team_id>/members")
@login_required
@endpoint(members_schema, errors=("TEAM_NOT_FOUND",))
def list_members(team_id: str):
    """List the team's members with their roles.

    Needs membership of the team (any role). Changes nothing.
    """
    return members.list_members(signed_in(), team_id)


@bp.put("/<team_id>/members/<user_id>")
@login_required
@endpoint(
    member_schema, body=role_change_schema, errors=(*NOT_VISIBLE, "NOT_A_MEMBER", "LAST_OWNER")
)
def change_member_role(fields, team_id: str, user_id: str):
    """Give a member another role.

    Owners change any role; admins only between `admin` and `member`, and never an owner's.
    The last owner cannot lose the role (LAST_OWNER). Returns the member.
    """
    return members.change_role(signed_in(), team_id, user_id, fields["role"])


@bp.delete("/<team_id>/members/<user_id>")
@login_required
@endpoint(None, errors=(*NOT_VISIBLE, "NOT_A_MEMBER", "LAST_OWNER"))
def remove_member(team_id: str, user_id: str):
    """Remove a member, or leave the team (your own user id).

    Owners and admins remove members of their rank or below (admins cannot remove owners);
    anyone may leave. The last owner can neither leave nor be removed (LAST_OWNER). The
    removed member loses the team's plan at once and gets a notice.
    """
    members.remove_member(signed_in(), team_id, user_id)


@bp.post("/<team_id>/invitations")
@login_required
@endpoint(
    invitation_schema,
    body=invitation_create_schema,
    status=201,
    errors=(
        *NOT_VISIBLE,
        "SEAT_LIMIT_REACHED",
        "ALREADY_MEMBER",
        "ALREADY_INVITED",
        "RATE_LIMITED",
    ),
)
def create_invitation(fields, team_id: str):
    """Invite an email address into the team.

    Needs the role owner or admin. Members plus pending invitations never exceed the team's
    seats (SEAT_LIMIT_REACHED). The address gets a link valid 7 days, which the person opens
    signed in with that address, verified. At most 3 such mails an hour go to one address,
    counted with email-change confirmations (RATE_LIMITED).
    """
    return invitations.invite(signed_in(), team_id, fields["email"], fields["role"])


@bp.get("/<team_id>/invitations")
@login_required
@endpoint(invitations_schema, errors=NOT_VISIBLE)
def list_invitations(team_id: str):
    """List the team's pending invitations, newest first.

    Needs the role owner or admin. Changes nothing.
    """
    return invitations.list_invitations(signed_in(), team_id)


@bp.delete("/<team_id>/invitations/<invitation_id>")
@login_required
@endpoint(None, errors=(*NOT_VISIBLE, "NOT_FOUND"))
def revoke_invitation(team_id: str, invitation_id: str):
    """Revoke a pending invitation; its link stops working and its seat is free again.

    Needs the role owner or admin.
    """
    invitations.revoke(signed_in(), team_id, invitation_id)


@bp.get("/<team_id>/activity")
@login_required
@endpoint(team_activity_page_schema, query=activity_query_schema, errors=NOT_VISIBLE)
def list_team_activity(query, team_id: str):
    """Page through the team's audit log, newest first.

    Needs the role owner or admin. Creation, changes, invitations, joins, removals, role
    changes and plan assignments, with who did them; pass `nextCursor` as `before` for older
    events.
    """
    return events.team_log(signed_in(), team_id, query["limit"], query.get("before"))
