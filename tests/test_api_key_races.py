"""Concurrent verify calls of one key, over HTTP on two gunicorn workers, never overshoot the
plan's monthly API requests: with 10 calls left, 40 calls released together from a barrier
give exactly 10 successes, and the stored counter ends at the limit."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from functools import partial

import pytest
import requests
import sqlalchemy as sa

from smartcv_account.models import User

from .factories import PASSWORD
from .gunicorn_helpers import COOKIE, gunicorns, service_env, sign_up, together

pytestmark = pytest.mark.slow

TOKEN = "multi-instance-internal-token"  # service_env's INTERNAL_API_TOKEN
FREE_LIMIT = 100
ROUNDS = 3


@pytest.fixture(scope="module")
def service(migrated_url):
    """Two gunicorn workers on a migrated database; (url, engine)."""
    engine = sa.create_engine(migrated_url.replace("postgresql://", "postgresql+psycopg://"))
    with gunicorns(service_env(migrated_url), workers=2) as (instance,):
        yield instance.url, engine
    engine.dispose()


def key_with_calls_left(base: str, engine: sa.Engine, left: int) -> tuple[str, str]:
    """Sign a FREE user up with `left` API requests left this month; return (user id, secret)."""
    account = sign_up(base, "keys")
    now = datetime.now(UTC)
    with engine.begin() as connection:
        connection.execute(
            sa.update(User)
            .where(User.public_id == account.id)
            .values(
                email_verified_at=now,
                api_requests_used=FREE_LIMIT - left,
                # Far enough ahead that no monthly reset happens during the round.
                api_requests_reset_at=now + timedelta(days=40),
            )
        )
    response = requests.post(
        base + "/api/account/api-keys",
        json={"name": "race", "scopes": ["ai:use"], "currentPassword": PASSWORD},
        headers={"Cookie": f"{COOKIE}={account.cookie}"},
        timeout=30,
    )
    assert response.status_code == 201, response.text
    return account.id, response.json()["data"]["secret"]


def verify(base: str, secret: str) -> requests.Response:
    """One verify call on its own connection (either worker may take it)."""
    return requests.post(
        base + "/api/internal/api-keys/verify",
        json={"key": secret, "scope": "ai:use"},
        headers={"Authorization": f"Bearer {TOKEN}", "Connection": "close"},
        timeout=60,
    )


def test_40_concurrent_verifies_with_10_calls_left_give_exactly_10(service):
    base, engine = service
    for _ in range(ROUNDS):
        user_id, secret = key_with_calls_left(base, engine, 10)
        answers = together(*(partial(verify, base, secret) for _ in range(40)))
        statuses = Counter(answer.status_code for answer in answers)
        assert statuses == {200: 10, 429: 30}, [a.text[:200] for a in answers]
        counted = sorted(
            a.json()["data"]["usage"]["apiRequestsUsed"] for a in answers if a.status_code == 200
        )
        assert counted == list(range(FREE_LIMIT - 9, FREE_LIMIT + 1))
        for answer in answers:
            if answer.status_code == 429:
                assert answer.json()["details"] == {
                    "metric": "apiRequests",
                    "limit": FREE_LIMIT,
                    "used": FREE_LIMIT,
                }
        with engine.connect() as connection:
            stored = connection.scalar(
                sa.select(User.api_requests_used).where(User.public_id == user_id)
            )
        assert stored == FREE_LIMIT
