"""Each rule's Python and SQL forms agree on every case, the boundaries included."""

from __future__ import annotations

import itertools
from datetime import datetime, timedelta

import pytest
import sqlalchemy as sa

from smartcv_account import clock
from smartcv_account.catalogue import limits_for
from smartcv_account.errors import ApiError
from smartcv_account.extensions import db
from smartcv_account.models import Subscription, Team, TeamMember, User
from smartcv_account.rules import due, entitlement
from smartcv_account.services import plans as plan_snapshot
from smartcv_account.services import usage

from .billing_helpers import change, subscribe
from .factories import UserFactory
from .test_usage import post_usage

SECOND = timedelta(seconds=1)
STATUSES = ("ACTIVE", "TRIALING", "PAST_DUE", "INCOMPLETE", "CANCELED")


@pytest.fixture
def every_case(app, plans, frozen_clock) -> list[Subscription]:
    """One user per combination of the columns the rules read, at and around each boundary."""
    now = frozen_clock
    expiry = now - entitlement.INCOMPLETE_EXPIRY
    moments = (None, now - SECOND, now, now + SECOND)
    cases = itertools.product(
        STATUSES,
        (False, True),  # billed by a provider, or arranged by an operator
        (False, True),  # cancel at period end
        moments,  # end of the period
        (expiry - SECOND, expiry, expiry + SECOND),  # created
        moments,  # next payment attempt
    )
    users = [UserFactory.build() for _ in range(960)]
    db.session.add_all(users)
    db.session.flush()
    rows = []
    for user, (status, billed, cancel, end, created, retry) in zip(users, cases, strict=True):
        subscription = Subscription(
            public_id=f"sub_case{user.id}",
            user_id=user.id,
            plan_id="plan_premium_monthly",
            status=status,
            provider_subscription_id=f"provider_{user.id}" if billed else None,
            cancel_at_period_end=cancel,
            current_period_end=end,
            next_payment_attempt=retry,
            created_at=created,
            updated_at=created,
        )
        db.session.add(subscription)
        rows.append((user, subscription))
    db.session.flush()
    for user, subscription in rows:
        user.current_subscription_id = subscription.id
    db.session.commit()
    return [subscription for _, subscription in rows]


def _type_of(plan_id: str) -> str:
    """A plan's type, as the reads look it up."""
    return plan_snapshot.plan_for_display(plan_id).type


def test_entitlement_in_sql_is_the_same_rule_as_in_python(every_case):
    now = clock.now()
    bound = {name: sa.literal(value) for name, value in entitlement.parameters(now).items()}
    status = entitlement.status_at_sql(bound["now"], bound["incomplete_before"])
    plan_type = entitlement.plan_type_sql(bound["now"], bound["incomplete_before"])
    in_sql = {
        row.id: (row.status, row.plan_type)
        for row in db.session.execute(
            sa.select(Subscription.id, status.label("status"), plan_type.label("plan_type"))
            .select_from(User)
            .join(Subscription, Subscription.id == User.current_subscription_id)
        )
    }

    in_python = {
        row.id: (entitlement.status_at(row, now), entitlement.plan_type(row, now, _type_of))
        for row in every_case
    }

    assert len(in_python) == 960
    assert in_sql == in_python
    # The boundaries are among the cases: a cancel at period end ending exactly now.
    assert {"CANCELED", "ACTIVE"} <= {status for status, _ in in_python.values()}
    assert {"FREE", "PREMIUM"} == {plan for _, plan in in_python.values()}


def test_due_in_sql_is_the_same_rule_as_in_python(every_case):
    now = clock.now()
    in_sql = set(db.session.scalars(sa.select(Subscription.id).where(due.due_sql(now))))

    in_python = {row.id for row in every_case if due.is_due(row, now)}

    assert in_sql == in_python
    assert 0 < len(in_python) < len(every_case)


def test_at_a_cancels_period_end_the_usage_call_refuses_what_the_account_says_is_over(
    auth_client, user, plans, frozen_clock
):
    assert subscribe(auth_client).status_code == 201
    assert change(auth_client, "cancel").status_code == 200
    end = auth_client.get("/api/account").json["data"]["subscriptionExpiresAt"]
    # The period is over by the clock; nothing has run `advance-subscriptions` yet.
    clock.freeze(datetime.fromisoformat(end.replace("Z", "+00:00")))
    account = auth_client.get("/api/account").json["data"]
    assert (account["subscriptionType"], account["resumesLimit"]) == ("FREE", 5)

    answer = post_usage(auth_client, user.public_id, {"metric": "resumes", "delta": 6})

    assert answer.status_code == 429
    assert answer.json["details"] == {"metric": "resumes", "limit": 5, "used": 0}


# --- teams: the best of the user's own plan and their teams' ------------------------------------

OWN_CASES = (None, "ACTIVE", "PAST_DUE")  # no subscription, entitled, not entitled
TEAM_PLANS = ("plan_free", "plan_premium_monthly", "plan_enterprise")


@pytest.fixture
def team_cases(app, plans, frozen_clock) -> list[tuple[User, tuple[str, ...]]]:
    """One user per own plan and set of teams (none, one, two of every plan): (user, plans)."""
    now = frozen_clock
    teams = {}
    for plan_id in TEAM_PLANS:
        for copy in range(2):
            team = Team(
                public_id=f"team_{plan_id[5:9]}{copy}".ljust(29, "0"),
                name=plan_id,
                plan_id=plan_id,
                seats=100,
                created_at=now,
                updated_at=now,
            )
            db.session.add(team)
            teams[plan_id, copy] = team
    team_sets = [()]
    team_sets += [(plan,) for plan in TEAM_PLANS]
    team_sets += list(itertools.combinations_with_replacement(TEAM_PLANS, 2))
    cases = []
    for own, team_set in itertools.product(OWN_CASES, team_sets):
        user = UserFactory.build()
        db.session.add(user)
        db.session.flush()
        if own is not None:
            subscription = Subscription(
                public_id=f"sub_team{user.id}",
                user_id=user.id,
                plan_id="plan_premium_monthly",
                status=own,
                provider_subscription_id=f"provider_{user.id}",
                cancel_at_period_end=False,
                current_period_end=now + timedelta(days=3),
                created_at=now,
                updated_at=now,
            )
            db.session.add(subscription)
            db.session.flush()
            user.current_subscription_id = subscription.id
        for copy, plan_id in enumerate(team_set):
            team = teams[plan_id, copy]
            db.session.add(
                TeamMember(team_id=team.id, user_id=user.id, role="member", joined_at=now)
            )
        cases.append((user, tuple(team_set)))
    db.session.commit()
    return cases


def _python_form(user: User, team_plans: tuple[str, ...]) -> tuple[str, str | None]:
    """The effective plan type and the best team type, judged in Python."""
    now = clock.now()
    team_types = tuple(_type_of(plan_id) for plan_id in team_plans)
    effective = entitlement.plan_type(user.current_subscription, now, _type_of, team_types)
    return effective, entitlement.best_type(team_types)


def test_with_teams_the_sql_form_is_the_same_rule_as_the_python_form(team_cases):
    now = clock.now()
    bound = {name: sa.literal(value) for name, value in entitlement.parameters(now).items()}
    plan_type = entitlement.plan_type_sql(bound["now"], bound["incomplete_before"])
    team_type = entitlement.team_plan_type_sql(User.__table__.c.id)
    in_sql = {
        row.id: (row.plan_type, row.team_type)
        for row in db.session.execute(
            sa.select(User.id, plan_type.label("plan_type"), team_type.label("team_type"))
        )
    }

    in_python = {user.id: _python_form(user, team_plans) for user, team_plans in team_cases}

    assert in_sql == in_python
    assert {effective for effective, _ in in_python.values()} == {"FREE", "PREMIUM", "ENTERPRISE"}


def test_with_teams_the_usage_call_counts_against_the_limits_the_reads_show(team_cases):
    """The usage call's own statement (its RETURNING and its WHERE) against the Python form."""
    for user, team_plans in team_cases:
        effective, _ = _python_form(user, team_plans)
        limit = int(limits_for(effective)["apiRequestsLimit"])
        answer = usage.record_usage(user.public_id, "apiRequests", 1)
        db.session.commit()
        assert answer["api_requests_limit"] == limit, (effective, team_plans)
        if limit != -1:
            with pytest.raises(ApiError) as refused:
                usage.record_usage(user.public_id, "apiRequests", limit)
            assert refused.value.details == {"metric": "apiRequests", "limit": limit, "used": 1}


def test_plan_source_is_team_only_when_a_team_beats_the_users_own_plan():
    assert entitlement.plan_source("FREE", ()) == "personal"
    assert entitlement.plan_source("FREE", ("FREE",)) == "personal"
    assert entitlement.plan_source("PREMIUM", ("PREMIUM",)) == "personal"
    assert entitlement.plan_source("PREMIUM", ("ENTERPRISE",)) == "team"
    assert entitlement.plan_source("FREE", ("PREMIUM",)) == "team"
    assert entitlement.plan_source("ENTERPRISE", ("ENTERPRISE",)) == "personal"


@pytest.fixture
def trial_cases(app, plans, frozen_clock) -> list[Subscription]:
    """One subscription per combination of what the trial notice rule reads, at its bounds."""
    now = frozen_clock
    ahead = due.TRIAL_NOTICE_AHEAD
    trial_ends = (None, now - SECOND, now, now + SECOND, now + ahead, now + ahead + SECOND)
    cases = list(
        itertools.product(
            STATUSES,
            (False, True),  # billed by a provider
            (False, True),  # cancel at period end
            trial_ends,
            (None, now),  # notice already sent
        )
    )
    users = [UserFactory.build() for _ in cases]
    db.session.add_all(users)
    db.session.flush()
    rows = []
    for user, (status, billed, cancel, trial_end, sent) in zip(users, cases, strict=True):
        rows.append(
            Subscription(
                public_id=f"sub_trial{user.id}",
                user_id=user.id,
                plan_id="plan_premium_monthly",
                status=status,
                provider_subscription_id=f"provider_{user.id}" if billed else None,
                cancel_at_period_end=cancel,
                trial_end=trial_end,
                trial_notice_sent_at=sent,
                created_at=now,
                updated_at=now,
            )
        )
    db.session.add_all(rows)
    db.session.commit()
    return rows


def test_trial_notice_due_in_sql_is_the_same_rule_as_in_python(trial_cases):
    now = clock.now()
    in_sql = set(
        db.session.scalars(sa.select(Subscription.id).where(due.trial_notice_due_sql(now)))
    )

    in_python = {row.id for row in trial_cases if due.trial_notice_due(row, now)}

    assert in_sql == in_python
    assert 0 < len(in_python) < len(trial_cases)


def test_a_lapsed_pending_change_is_due_in_sql_as_in_python(app, plans, frozen_clock):
    now = frozen_clock
    rows = []
    for status, lapse in itertools.product(STATUSES, (None, now - SECOND, now, now + SECOND)):
        user = UserFactory()
        rows.append(
            Subscription(
                public_id=f"sub_lapse{user.id}",
                user_id=user.id,
                plan_id="plan_premium_monthly",
                status=status,
                provider_subscription_id=f"provider_lapse_{user.id}",
                cancel_at_period_end=False,
                current_period_end=now + timedelta(days=10),
                pending_plan_id="plan_premium_yearly" if lapse else None,
                pending_expires_at=lapse,
                created_at=now,
                updated_at=now,
            )
        )
    db.session.add_all(rows)
    db.session.commit()

    in_sql = set(db.session.scalars(sa.select(Subscription.id).where(due.due_sql(now))))
    in_python = {row.id for row in rows if due.is_due(row, now)}

    assert in_sql == in_python
    lapsed = {row.id for row in rows if row.status in ("ACTIVE", "TRIALING", "PAST_DUE")}
    lapsed &= {row.id for row in rows if row.pending_expires_at and row.pending_expires_at <= now}
    assert lapsed <= in_python
