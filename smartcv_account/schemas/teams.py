"""Schemas of the team endpoints (/api/teams) and the internal team look-ups."""

from __future__ import annotations

from marshmallow import fields, validate

from ..catalogue import PLAN_TYPE_ORDER
from ..models import TEAM_ACTIVITY_TYPES, TEAM_ROLES
from .account import EMAIL_ADDRESS, NAME_LENGTH, AvatarUrl
from .base import (
    BaseSchema,
    Timestamp,
    Trimmed,
    about,
    current_password_field,
    next_cursor_field,
)
from .lifecycle import ActivityEventSchema

TEAM_ID_EXAMPLE = "team_5d0c2a7e9b1f3c4d6e8a0b2c"
USER_ID_EXAMPLE = "user_9f2c4e7a1b3d5f60a1b2c3d4"
INVITED_ROLES = ("admin", "member")


class BrandingSchema(BaseSchema):
    """A team's branding; each key optional on load (PUT merges key by key), null clears it."""

    display_name = Trimmed(
        data_key="displayName",
        allow_none=True,
        validate=NAME_LENGTH,
        metadata=about("The name other SmartCV services show (1-100 characters).", "Acme Inc."),
    )
    logo_url = AvatarUrl(
        data_key="logoUrl",
        allow_none=True,
        validate=validate.Length(max=500),
        metadata=about(
            "An https URL of the logo on a public host (at most 500 characters).",
            "https://cdn.example.com/acme.png",
        ),
    )
    primary_color = fields.String(
        data_key="primaryColor",
        allow_none=True,
        validate=validate.Regexp(r"^#[0-9A-Fa-f]{6}$", error="Must be a colour as #RRGGBB."),
        metadata=about("The brand colour as #RRGGBB.", "#1A73E8"),
    )


class TeamSchema(BaseSchema):
    """A team as its members see it."""

    id = fields.String(metadata=about("The team's id.", TEAM_ID_EXAMPLE))
    name = fields.String(metadata=about("The team's name (1-100 characters).", "Acme"))
    role = fields.String(
        validate=validate.OneOf(TEAM_ROLES),
        metadata=about("The reader's role in the team.", "owner"),
    )
    subscription_type = fields.String(
        data_key="subscriptionType",
        validate=validate.OneOf(PLAN_TYPE_ORDER),
        metadata=about("The team's plan type: every member gets its limits.", "ENTERPRISE"),
    )
    seats = fields.Integer(
        metadata=about("How many members and pending invitations the team may have.", 25)
    )
    members_count = fields.Integer(data_key="membersCount", metadata=about("Its members.", 3))
    branding = fields.Nested(BrandingSchema, metadata=about("The team's branding."))
    created_at = Timestamp(data_key="createdAt", metadata=about("When it was created."))


class TeamCreateSchema(BaseSchema):
    """POST /api/teams."""

    name = Trimmed(required=True, validate=NAME_LENGTH, metadata=about("The team's name.", "Acme"))


class TeamUpdateSchema(BaseSchema):
    """PUT /api/teams/<id>: a partial update; only the fields sent change."""

    name = Trimmed(validate=NAME_LENGTH, metadata=about("A new name.", "Acme Europe"))
    branding = fields.Nested(
        BrandingSchema, metadata=about("Branding to change; keys left out keep their value.")
    )


class TeamDeleteSchema(BaseSchema):
    """DELETE /api/teams/<id>: the owner's password."""

    current_password = current_password_field()


class MemberSchema(BaseSchema):
    """A member of a team."""

    user_id = fields.String(data_key="userId", metadata=about("The member's id.", USER_ID_EXAMPLE))
    name = fields.String(metadata=about("Their name.", "Ada Lovelace"))
    email = fields.String(metadata=about("Their email address.", "ada@example.com"))
    role = fields.String(
        validate=validate.OneOf(TEAM_ROLES), metadata=about("Their role.", "member")
    )
    joined_at = Timestamp(data_key="joinedAt", metadata=about("When they joined."))


class RoleChangeSchema(BaseSchema):
    """PUT /api/teams/<id>/members/<userId>."""

    role = fields.String(
        required=True,
        validate=validate.OneOf(TEAM_ROLES),
        metadata=about("The new role.", "admin"),
    )


class InvitationCreateSchema(BaseSchema):
    """POST /api/teams/<id>/invitations."""

    email = Trimmed(
        required=True,
        validate=EMAIL_ADDRESS,
        metadata={**about("The address to invite.", "grace@example.com"), "format": "email"},
    )
    role = fields.String(
        required=True,
        validate=validate.OneOf(INVITED_ROLES),
        metadata=about("The role the person gets on accepting.", "member"),
    )


class InvitationSchema(BaseSchema):
    """A pending invitation."""

    id = fields.String(metadata=about("The invitation's id.", "inv_0a1b2c3d4e5f60718293a4b5"))
    email = fields.String(metadata=about("The invited address.", "grace@example.com"))
    role = fields.String(
        validate=validate.OneOf(INVITED_ROLES), metadata=about("The role offered.", "member")
    )
    expires_at = Timestamp(data_key="expiresAt", metadata=about("When the link stops working."))
    invited_by = fields.String(
        data_key="invitedBy",
        allow_none=True,
        metadata=about(
            "The id of the user who invited, or null once that account is deleted.", USER_ID_EXAMPLE
        ),
    )


class TeamEventSchema(ActivityEventSchema):
    """One event of a team's audit log."""

    type = fields.String(
        validate=validate.OneOf(TEAM_ACTIVITY_TYPES),
        metadata=about("What happened.", "member_joined"),
    )
    actor_id = fields.String(
        data_key="actorId",
        allow_none=True,
        metadata=about(
            "The id of the member who did it; null for an operator or a deleted account.",
            USER_ID_EXAMPLE,
        ),
    )


class TeamActivityPageSchema(BaseSchema):
    """The `data` of GET /api/teams/<id>/activity."""

    events = fields.List(fields.Nested(TeamEventSchema), metadata=about("Events, newest first."))
    next_cursor = next_cursor_field()


class InternalTeamSchema(BaseSchema):
    """GET /api/internal/teams/<teamId>: what other SmartCV services need of a team."""

    id = fields.String(metadata=about("The team's id.", TEAM_ID_EXAMPLE))
    name = fields.String(metadata=about("The team's name.", "Acme"))
    branding = fields.Nested(
        BrandingSchema, metadata=about("Its branding (apply it for ENTERPRISE teams).")
    )
    subscription_type = fields.String(
        data_key="subscriptionType",
        validate=validate.OneOf(PLAN_TYPE_ORDER),
        metadata=about("The team's plan type.", "ENTERPRISE"),
    )
    seats = fields.Integer(metadata=about("Its seats.", 25))


class InternalRoleSchema(BaseSchema):
    """GET /api/internal/teams/<teamId>/members/<userId>."""

    role = fields.String(
        validate=validate.OneOf(TEAM_ROLES), metadata=about("The user's role.", "admin")
    )


team_schema = TeamSchema()
teams_schema = TeamSchema(many=True)
team_create_schema = TeamCreateSchema()
team_update_schema = TeamUpdateSchema()
team_delete_schema = TeamDeleteSchema()
member_schema = MemberSchema()
members_schema = MemberSchema(many=True)
role_change_schema = RoleChangeSchema()
invitation_create_schema = InvitationCreateSchema()
invitation_schema = InvitationSchema()
invitations_schema = InvitationSchema(many=True)
team_activity_page_schema = TeamActivityPageSchema()
internal_team_schema = InternalTeamSchema()
internal_role_schema = InternalRoleSchema()
