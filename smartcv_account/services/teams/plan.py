"""The plan of a team, set by an operator (ENTERPRISE is sold by sales).

`plan_enterprise` with N seats gives every member ENTERPRISE limits where that beats their own
plan (rules/entitlement.py reads the team's plan on every request: no cache to refresh).
`plan_free` ends it: members stay on their own plans' limits, pending invitations are revoked
and the team has one seat again.
"""

from __future__ import annotations

import sqlalchemy as sa

from ... import client, clock
from ...catalogue import FREE_PLAN_ID
from ...extensions import db
from ...models import TeamInvitation
from . import access, events, seats

ENTERPRISE_PLAN_ID = "plan_enterprise"
TEAM_PLANS = (ENTERPRISE_PLAN_ID, FREE_PLAN_ID)


def assign_team_plan(public_id: str, plan_id: str, seat_count: int | None) -> str:
    """Put the team on `plan_id` (with `seat_count` seats for ENTERPRISE); return a report.

    Refusals are ValueErrors, which the CLI shows as one `Error:` line. The team's row is locked
    for the count, so no invitation or acceptance slips in between the check and the change.
    """
    if plan_id not in TEAM_PLANS:
        raise ValueError(f"a team can be put on {' or '.join(TEAM_PLANS)}, not {plan_id}")
    team = access.find_team(public_id, lock=True)
    if team is None:
        raise LookupError(f"no team with id {public_id}")
    now = clock.now()
    if plan_id == FREE_PLAN_ID:
        if seat_count is not None:
            raise ValueError("--seats goes with plan_enterprise; a free team has one seat")
        revoked = db.session.execute(
            sa.update(TeamInvitation)
            .where(TeamInvitation.team_id == team.id, seats.pending_condition())
            .values(revoked_at=now)
            .execution_options(synchronize_session=False)
        ).rowcount
        seat_count, report = 1, f"{revoked} pending invitation(s) revoked"
    else:
        if seat_count is None:
            raise ValueError("plan_enterprise needs --seats N")
        taken = seats.seats_taken(team.id)
        if seat_count < taken:
            raise ValueError(
                f"the team has {taken} members and pending invitations; --seats must be at"
                f" least {taken}"
            )
        report = f"{seat_count} seat(s)"
    team.plan_id, team.seats, team.updated_at = plan_id, seat_count, now
    events.record(
        team.id, None, "plan_assigned", {"planId": plan_id, "seats": seat_count}, client.NOBODY
    )
    db.session.commit()
    return f"team {team.public_id} is now on {plan_id} ({report})"
