"""The account as GET /api/account shows it: the user with the plan and usage that apply now."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from .. import clock
from ..models import User
from ..principal import Principal
from ..rules.entitlement import best_type, plan_source, status_at
from . import plans, usage
from .teams.views import Membership, memberships

PREFERENCE_COLUMNS = ("language", "timezone", "theme", "email_notifications", "marketing_emails")


@dataclass(frozen=True, slots=True)
class AccountView:
    """What GET /api/account shows: the user with their effective plan and usage."""

    id: str
    email: str
    name: str
    avatar: str | None
    email_verified: bool
    email_verified_at: datetime | None
    subscription_type: str
    plan_source: str
    teams: list[Membership]
    subscription_status: str
    subscription_expires_at: datetime | None
    resumes_created: int
    resumes_limit: int
    api_requests_used: int
    api_requests_limit: int
    storage_used: int
    storage_limit: int
    preferences: dict[str, Any]
    created_at: datetime
    updated_at: datetime
    last_login_at: datetime | None


def account_view(user: Principal | User) -> AccountView:
    """Assemble the account as the API shows it, as of the clock, without writing.

    `subscriptionType` is the best of the user's own plan and their teams' plans; the teams
    are read only when the principal says there are any (one SELECT more for a member). A
    model (a link's redemption) is read as a principal first.
    """
    if isinstance(user, User):
        user = Principal.of(user, session_token="")
    subscription = user.current_subscription
    status = status_at(subscription, clock.now()) if subscription is not None else "ACTIVE"
    counters = usage.current_usage(user)
    ended = subscription is None or status == "CANCELED"
    own_type = "FREE" if ended else plans.plan_type(subscription.plan_id)
    teams = [] if user.team_plan_type is None else memberships(user.id)
    team_types = plans.team_types(user)
    return AccountView(
        id=user.public_id,
        email=user.email,
        name=user.name,
        avatar=user.avatar,
        email_verified=user.email_verified_at is not None,
        email_verified_at=user.email_verified_at,
        subscription_type=best_type((own_type, *team_types)),
        plan_source=plan_source(own_type, team_types),
        teams=teams,
        subscription_status=status,
        subscription_expires_at=None if ended else subscription.current_period_end,
        resumes_created=counters["resumes_created"],
        resumes_limit=counters["resumes_limit"],
        api_requests_used=counters["api_requests_used"],
        api_requests_limit=counters["api_requests_limit"],
        storage_used=counters["storage_used"],
        storage_limit=counters["storage_limit"],
        preferences={name: getattr(user, name) for name in PREFERENCE_COLUMNS},
        created_at=user.created_at,
        updated_at=user.updated_at,
        last_login_at=user.last_login_at,
    )
