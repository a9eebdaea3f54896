"""The internal usage API: counters, limits, the monthly reset, auth and concurrency."""

from __future__ import annotations

from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from threading import Barrier

import pytest

from smartcv_account import clock
from smartcv_account.extensions import db
from smartcv_account.principal import Principal
from smartcv_account.services import usage

from .factories import UserFactory
from .helpers import INTERNAL_TOKEN, post_usage, put_on_plan, stored

FREE_STORAGE = 10485760


@pytest.fixture
def unlimited(user, plans):
    """Put `user` on the ENTERPRISE plan (every limit -1)."""
    put_on_plan(user, "plan_enterprise")


# --- recording -------------------------------------------------------------------------------


def test_response_is_the_usage_object(client, user, frozen_clock):
    response = post_usage(client, user.public_id, {"metric": "resumes", "delta": 1})
    assert response.status_code == 200
    assert response.json == {
        "success": True,
        "data": {
            "resumesCreated": 1,
            "resumesLimit": 5,
            "apiRequestsUsed": 0,
            "apiRequestsLimit": 100,
            "storageUsed": 0,
            "storageLimit": FREE_STORAGE,
            "resetDate": "2025-02-01T00:00:00Z",
        },
    }


@pytest.mark.parametrize(
    ("metric", "key", "index"),
    [
        ("resumes", "resumesCreated", 0),
        ("apiRequests", "apiRequestsUsed", 1),
        ("storage", "storageUsed", 2),
    ],
)
def test_each_metric_counts_up(client, user, metric, key, index):
    post_usage(client, user.public_id, {"metric": metric, "delta": 2})
    response = post_usage(client, user.public_id, {"metric": metric, "delta": 3})
    assert response.status_code == 200
    assert response.json["data"][key] == 5
    assert stored(user.public_id)[index] == 5


@pytest.mark.parametrize(
    ("metric", "key", "index"), [("resumes", "resumesCreated", 0), ("storage", "storageUsed", 2)]
)
def test_gauges_count_down(client, user, metric, key, index):
    post_usage(client, user.public_id, {"metric": metric, "delta": 4})
    response = post_usage(client, user.public_id, {"metric": metric, "delta": -3})
    assert response.status_code == 200
    assert response.json["data"][key] == 1
    assert stored(user.public_id)[index] == 1


@pytest.mark.parametrize(
    ("metric", "key", "index"), [("resumes", "resumesCreated", 0), ("storage", "storageUsed", 2)]
)
def test_gauges_stop_at_zero(client, user, metric, key, index):
    post_usage(client, user.public_id, {"metric": metric, "delta": 2})
    response = post_usage(client, user.public_id, {"metric": metric, "delta": -5})
    assert response.status_code == 200
    assert response.json["data"][key] == 0
    assert stored(user.public_id)[index] == 0


def test_api_requests_cannot_count_down(client, user):
    post_usage(client, user.public_id, {"metric": "apiRequests", "delta": 3})
    response = post_usage(client, user.public_id, {"metric": "apiRequests", "delta": -1})
    assert response.status_code == 400
    assert response.json["code"] == "VALIDATION_ERROR"
    assert response.json["details"]["field"] == "delta"
    assert stored(user.public_id)[1] == 3


# --- limits ----------------------------------------------------------------------------------


def test_reaching_the_limit_exactly_is_allowed(client, user):
    response = post_usage(client, user.public_id, {"metric": "resumes", "delta": 5})
    assert response.status_code == 200
    assert response.json["data"]["resumesCreated"] == 5


@pytest.mark.parametrize(
    ("metric", "limit", "first", "index"),
    [("resumes", 5, 4, 0), ("apiRequests", 100, 99, 1), ("storage", FREE_STORAGE, 1000, 2)],
)
def test_passing_the_limit_is_refused_and_not_recorded(client, user, metric, limit, first, index):
    post_usage(client, user.public_id, {"metric": metric, "delta": first})
    response = post_usage(client, user.public_id, {"metric": metric, "delta": limit})
    assert response.status_code == 429
    assert response.json["success"] is False
    assert response.json["code"] == "SUBSCRIPTION_LIMIT_EXCEEDED"
    assert response.json["details"] == {"metric": metric, "limit": limit, "used": first}
    assert stored(user.public_id)[index] == first


def test_freeing_is_allowed_above_the_limit(client, app):
    # A user downgraded from PREMIUM may hold more resumes than FREE allows.
    user = UserFactory(resumes_created=8)
    response = post_usage(client, user.public_id, {"metric": "resumes", "delta": -1})
    assert response.status_code == 200
    assert response.json["data"]["resumesCreated"] == 7


def test_growing_above_the_limit_is_refused(client, app):
    user = UserFactory(resumes_created=8)
    response = post_usage(client, user.public_id, {"metric": "resumes", "delta": 1})
    assert response.status_code == 429
    assert response.json["details"] == {"metric": "resumes", "limit": 5, "used": 8}


def test_unlimited_plan_is_never_refused(client, user, unlimited):
    for metric in ("resumes", "apiRequests", "storage"):
        response = post_usage(client, user.public_id, {"metric": metric, "delta": 10**12})
        assert response.status_code == 200, response.json
    data = response.json["data"]
    assert (data["resumesLimit"], data["apiRequestsLimit"], data["storageLimit"]) == (-1, -1, -1)
    assert stored(user.public_id) == (10**12, 10**12, 10**12)


def test_limits_follow_the_effective_plan(client, user, plans):
    put_on_plan(user, "plan_premium_monthly")
    assert post_usage(client, user.public_id, {"metric": "resumes", "delta": 50}).status_code == 200
    response = post_usage(client, user.public_id, {"metric": "apiRequests", "delta": 1001})
    assert response.status_code == 429
    assert response.json["details"] == {"metric": "apiRequests", "limit": 1000, "used": 0}


# --- the monthly reset -----------------------------------------------------------------------


def test_api_requests_reset_at_the_start_of_the_month(client, user):
    clock.freeze(datetime(2025, 1, 20, 15, 30, tzinfo=UTC))
    response = post_usage(client, user.public_id, {"metric": "apiRequests", "delta": 99})
    assert response.json["data"]["apiRequestsUsed"] == 99
    assert response.json["data"]["resetDate"] == "2025-02-01T00:00:00Z"
    assert (
        post_usage(client, user.public_id, {"metric": "apiRequests", "delta": 2}).status_code == 429
    )

    clock.freeze(datetime(2025, 2, 1, tzinfo=UTC))
    response = post_usage(client, user.public_id, {"metric": "apiRequests", "delta": 2})
    assert response.status_code == 200
    assert response.json["data"]["apiRequestsUsed"] == 2
    assert response.json["data"]["resetDate"] == "2025-03-01T00:00:00Z"
    assert stored(user.public_id)[1] == 2


def test_reset_does_not_happen_before_the_reset_date(client, user):
    clock.freeze(datetime(2025, 1, 20, tzinfo=UTC))
    post_usage(client, user.public_id, {"metric": "apiRequests", "delta": 99})
    clock.freeze(datetime(2025, 1, 31, 23, 59, 59, tzinfo=UTC))
    response = post_usage(client, user.public_id, {"metric": "apiRequests", "delta": 1})
    assert response.json["data"]["apiRequestsUsed"] == 100
    assert response.json["data"]["resetDate"] == "2025-02-01T00:00:00Z"


def test_reads_apply_the_reset_without_writing(client, user):
    clock.freeze(datetime(2025, 1, 20, tzinfo=UTC))
    post_usage(client, user.public_id, {"metric": "apiRequests", "delta": 99})
    clock.freeze(datetime(2025, 3, 5, tzinfo=UTC))  # a whole month without a request
    db.session.refresh(user)
    view = usage.current_usage(Principal.of(user, session_token=""))
    assert view["api_requests_used"] == 0
    assert view["reset_date"] == datetime(2025, 4, 1, tzinfo=UTC)
    assert stored(user.public_id)[1] == 99


def test_refusal_after_the_reset_reports_the_reset_counter(client, user):
    clock.freeze(datetime(2025, 1, 20, tzinfo=UTC))
    post_usage(client, user.public_id, {"metric": "apiRequests", "delta": 99})
    clock.freeze(datetime(2025, 2, 2, tzinfo=UTC))
    response = post_usage(client, user.public_id, {"metric": "apiRequests", "delta": 101})
    assert response.status_code == 429
    assert response.json["details"] == {"metric": "apiRequests", "limit": 100, "used": 0}


def test_reset_date_rolls_over_the_year(client, user):
    clock.freeze(datetime(2025, 12, 31, 23, 59, 59, tzinfo=UTC))
    response = post_usage(client, user.public_id, {"metric": "apiRequests", "delta": 1})
    assert response.json["data"]["resetDate"] == "2026-01-01T00:00:00Z"


def test_gauges_do_not_reset_monthly(client, user):
    clock.freeze(datetime(2025, 1, 20, tzinfo=UTC))
    post_usage(client, user.public_id, {"metric": "resumes", "delta": 3})
    clock.freeze(datetime(2025, 2, 20, tzinfo=UTC))
    response = post_usage(client, user.public_id, {"metric": "storage", "delta": 1})
    assert response.json["data"]["resumesCreated"] == 3


def test_counter_without_a_reset_date_counts_in_this_month(client, app, frozen_clock):
    user = UserFactory(api_requests_used=50)  # api_requests_reset_at is NULL
    response = post_usage(client, user.public_id, {"metric": "apiRequests", "delta": 1})
    assert response.json["data"]["apiRequestsUsed"] == 51
    assert response.json["data"]["resetDate"] == "2025-02-01T00:00:00Z"


# --- authentication and lookup ---------------------------------------------------------------


def test_no_configured_token_forbids_every_call(app_factory):
    client = app_factory(INTERNAL_API_TOKEN="").test_client()
    response = post_usage(client, "user_x", {"metric": "resumes", "delta": 1}, token="")
    assert response.status_code == 403
    assert response.json["code"] == "FORBIDDEN"


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer wrong-token"},
        {"Authorization": f"Bearer {INTERNAL_TOKEN}x"},
        {"Authorization": f"Basic {INTERNAL_TOKEN}"},
        {"Authorization": INTERNAL_TOKEN},
        {"Authorization": "Bearer"},
        {"Authorization": "Bearer t\u00f6ken"},
    ],
    ids=["missing", "wrong", "longer", "basic", "no-scheme", "empty", "non-ascii"],
)
def test_wrong_or_missing_token_is_unauthorized(client, user, headers):
    response = client.post(
        f"/api/internal/users/{user.public_id}/usage",
        json={"metric": "resumes", "delta": 1},
        headers=headers,
    )
    assert response.status_code == 401
    assert response.json["code"] == "UNAUTHORIZED"
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert stored(user.public_id)[0] == 0


def test_scheme_is_case_insensitive(client, user):
    response = client.post(
        f"/api/internal/users/{user.public_id}/usage",
        json={"metric": "resumes", "delta": 1},
        headers={"Authorization": f"bearer {INTERNAL_TOKEN}"},
    )
    assert response.status_code == 200


def test_unknown_user_is_not_found(client, user):
    response = post_usage(client, "user_doesnotexist", {"metric": "resumes", "delta": 1})
    assert response.status_code == 404
    assert response.json["code"] == "USER_NOT_FOUND"


def test_internal_id_is_not_a_user_id(client, user):
    response = post_usage(client, str(user.id), {"metric": "resumes", "delta": 1})
    assert response.status_code == 404


def test_user_session_cannot_call_the_internal_api(auth_client, user):
    response = auth_client.post(
        f"/api/internal/users/{user.public_id}/usage", json={"metric": "resumes", "delta": -1}
    )
    assert response.status_code == 401


# --- validation ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"metric": "resumes", "delta": 0}, "delta"),
        ({"metric": "resumes", "delta": 1.0}, "delta"),
        ({"metric": "resumes", "delta": 1.5}, "delta"),
        ({"metric": "resumes", "delta": "1"}, "delta"),
        ({"metric": "resumes", "delta": True}, "delta"),
        ({"metric": "resumes", "delta": None}, "delta"),
        ({"metric": "resumes", "delta": 2**53}, "delta"),
        ({"metric": "resumes"}, "delta"),
        ({"delta": 1}, "metric"),
        ({"metric": "pages", "delta": 1}, "metric"),
        ({"metric": "resumesCreated", "delta": 1}, "metric"),
        ({"metric": 1, "delta": 1}, "metric"),
        ({"metric": "resumes", "delta": 1, "userId": "user_other"}, "userId"),
    ],
)
def test_invalid_body_is_a_validation_error(client, user, body, field):
    response = post_usage(client, user.public_id, body)
    assert response.status_code == 400
    assert response.json["code"] == "VALIDATION_ERROR"
    assert response.json["details"]["field"] == field
    assert stored(user.public_id) == (0, 0, 0)


def test_body_must_be_a_json_object(client, user):
    response = post_usage(client, user.public_id, [{"metric": "resumes", "delta": 1}])
    assert response.status_code == 400
    assert response.json["code"] == "VALIDATION_ERROR"


def test_body_must_be_json(client, user):
    response = client.post(
        f"/api/internal/users/{user.public_id}/usage",
        data="metric=resumes&delta=1",
        headers={"Authorization": f"Bearer {INTERNAL_TOKEN}", "Content-Type": "text/plain"},
    )
    assert response.status_code == 415


# --- the user's own session cannot change counters -------------------------------------------


@pytest.mark.parametrize(
    "field", ["resumesCreated", "apiRequestsUsed", "storageUsed", "resumesLimit", "usage"]
)
def test_account_update_rejects_usage_fields(auth_client, user, field):
    for metric in ("resumes", "apiRequests", "storage"):
        post_usage(auth_client, user.public_id, {"metric": metric, "delta": 3})
    response = auth_client.put("/api/account", json={field: 0})
    assert response.status_code == 400
    assert response.json["code"] == "VALIDATION_ERROR"
    assert response.json["details"]["field"] == field
    assert stored(user.public_id) == (3, 3, 3)
    account = auth_client.get("/api/account").json["data"]
    assert (account["resumesCreated"], account["apiRequestsUsed"], account["storageUsed"]) == (
        3,
        3,
        3,
    )


# --- concurrency -----------------------------------------------------------------------------


def test_concurrent_calls_never_overshoot_the_limit(app, user):
    public_id = user.public_id
    db.session.rollback()  # hold no transaction open while the writers race
    callers = 100
    start = Barrier(callers)

    def call() -> int:
        # A client per thread; each request pushes its own app context, hence its own
        # SQLAlchemy session and database connection.
        client = app.test_client()
        start.wait(timeout=30)
        return post_usage(client, public_id, {"metric": "resumes", "delta": 1}).status_code

    with ThreadPoolExecutor(max_workers=callers) as pool:
        statuses = Counter(
            future.result() for future in [pool.submit(call) for _ in range(callers)]
        )

    assert statuses == {200: 5, 429: 95}
    assert stored(public_id)[0] == 5
