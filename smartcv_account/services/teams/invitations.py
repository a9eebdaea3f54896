"""Invitations: an emailed link that brings a person into a team, within its seats.

The link's token follows the email-token rules (services/tokens.py): 256 random bits, present
only in the link (the outbox keeps it apart until sent), stored as its SHA-256 on the
invitation, single use, valid 7 days. The names in the mail (the inviter's and the team's)
were chosen by users and go to an address nobody has proved: they are cut and made link-safe
(mail/names.py).
"""

from __future__ import annotations

import re

import sqlalchemy as sa

from ... import clock
from ...errors import ApiError, field_error
from ...extensions import db
from ...mail import outbox, quota
from ...mail.names import third_party_name
from ...models import TeamInvitation, TeamMember, User
from ...principal import Principal
from .. import tokens
from ..identity import new_public_id, normalise_email
from ..locking import lock_user
from . import access, events, seats
from .views import InvitationView, TeamView, invitation_view, team_view

INVITATION_ID = re.compile(r"inv_[0-9a-f]{24}")
KIND = tokens.KINDS["team_invitation"]


def invite(principal: Principal, public_id: str, email: str, role: str) -> InvitationView:
    """Invite an address into the team with `role`, if a seat is free; mail it the link."""
    inviter = lock_user(principal)
    team, _ = access.team_of_member(
        inviter.id, public_id, access.MANAGERS, "inviting people", lock=True
    )
    email = normalise_email(email)
    member = db.session.scalar(
        sa.select(TeamMember.user_id)
        .join(User, User.id == TeamMember.user_id)
        .where(TeamMember.team_id == team.id, User.email == email)
    )
    if member is not None:
        raise field_error("ALREADY_MEMBER", "This person is already a member of the team.", "email")
    pending = db.session.scalar(
        sa.select(TeamInvitation.id).where(
            TeamInvitation.team_id == team.id,
            TeamInvitation.email == email,
            seats.pending_condition(),
        )
    )
    if pending is not None:
        raise field_error(
            "ALREADY_INVITED", "This address already has a pending invitation.", "email"
        )
    seats.require_free_seat(team, seats.seats_taken(team.id))
    # Mail to an address nobody proved: counted with the email-change confirmations it gets.
    quota.reserve_confirmation(email)
    token = tokens.new_token()
    now = clock.now()
    invitation = TeamInvitation(
        public_id=new_public_id("inv"),
        team_id=team.id,
        email=email,
        role=role,
        token_hash=tokens.digest(token),
        invited_by_user_id=inviter.id,
        created_at=now,
        expires_at=now + KIND.lifetime,
    )
    db.session.add(invitation)
    outbox.enqueue(
        email,
        KIND.template,
        user_id=inviter.id,
        link_token=token,
        inviter_name=third_party_name(inviter.name),
        team_name=third_party_name(team.name),
        role=role,
        email=email,
        link=outbox.link(KIND.page),
    )
    db.session.flush()
    events.record(
        team.id, inviter.id, "member_invited", {"invitationId": invitation.public_id, "role": role}
    )
    return invitation_view(invitation, inviter.public_id)


def list_invitations(principal: Principal, public_id: str) -> list[InvitationView]:
    """Return the team's pending invitations, newest first."""
    team, _ = access.team_of_member(principal.id, public_id, access.MANAGERS, "seeing invitations")
    rows = db.session.execute(
        sa.select(TeamInvitation, User.public_id)
        .outerjoin(User, User.id == TeamInvitation.invited_by_user_id)
        .where(TeamInvitation.team_id == team.id, seats.pending_condition())
        .order_by(TeamInvitation.created_at.desc(), TeamInvitation.id.desc())
    )
    return [invitation_view(invitation, inviter) for invitation, inviter in rows]


def revoke(principal: Principal, public_id: str, invitation_public_id: str) -> None:
    """Revoke one pending invitation: its link stops working and its seat is free again."""
    user = lock_user(principal)
    team, _ = access.team_of_member(
        user.id, public_id, access.MANAGERS, "revoking invitations", lock=True
    )
    invitation = None
    if INVITATION_ID.fullmatch(invitation_public_id):
        invitation = db.session.scalar(
            sa.select(TeamInvitation).where(
                TeamInvitation.team_id == team.id,
                TeamInvitation.public_id == invitation_public_id,
                seats.pending_condition(),
            )
        )
    if invitation is None:
        raise ApiError("NOT_FOUND", "The team has no pending invitation with this id.")
    invitation.revoked_at = clock.now()
    events.record(team.id, user.id, "invitation_revoked", {"invitationId": invitation.public_id})


def accept(principal: Principal, token: str) -> TeamView:
    """Join the team an invitation is for, as the signed-in user with the invited address.

    The user's row is locked first, then the team's, then the invitation is read again under
    both: two acceptances of one link, or an acceptance racing a revocation, are judged one
    after the other (one member, the other INVALID_TOKEN).
    """
    user = lock_user(principal)
    found_hash = tokens.digest(token)
    team_id = db.session.scalar(
        sa.select(TeamInvitation.team_id).where(TeamInvitation.token_hash == found_hash)
    )
    locked = access.lock_teams([team_id] if team_id is not None else [])
    invitation = None
    if locked:
        invitation = db.session.scalar(
            sa.select(TeamInvitation)
            .where(TeamInvitation.token_hash == found_hash, seats.pending_condition())
            .execution_options(populate_existing=True)
        )
    if invitation is None:
        raise tokens.invalid_token()
    if user.email != invitation.email or user.email_verified_at is None:
        raise ApiError(
            "INVITATION_EMAIL_MISMATCH",
            "This invitation is for another email address; sign in with the invited one"
            " (verified).",
        )
    team = locked[0]
    if access.membership(team, user.id) is not None:
        raise ApiError("ALREADY_MEMBER", "You are already a member of this team.")
    # The invitation held its seat; seats only shrink with pending invitations revoked.
    seats.require_free_seat(team, seats.members_count(team.id))
    now = clock.now()
    invitation.accepted_at = now
    db.session.add(
        TeamMember(team_id=team.id, user_id=user.id, role=invitation.role, joined_at=now)
    )
    events.record(
        team.id,
        user.id,
        "member_joined",
        {"userId": user.public_id, "invitationId": invitation.public_id, "role": invitation.role},
    )
    db.session.flush()
    return team_view(team, invitation.role)
