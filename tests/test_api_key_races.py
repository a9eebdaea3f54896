"""API keys served as deployed: gunicorn workers and instances over one database.

- Concurrent verify calls of one key, on two workers, never overshoot the plan's monthly API
  requests: with 10 calls left, 40 calls released together from a barrier give exactly 10
  successes, and the stored counter ends at the limit.
- Concurrent creates never pass 10 live keys.
- A key revoked through one instance is refused by another at once (nothing caches keys).
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from functools import partial

import pytest
import requests
import sqlalchemy as sa

from smartcv_account.models import User

from .factories import PASSWORD
from .gunicorn_helpers import COOKIE, Account, gunicorns, service_env, sign_up, together

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


def verified_user(base: str, engine: sa.Engine, **values) -> Account:
    """Sign a FREE user up over HTTP and mark their email verified (with `values` set)."""
    account = sign_up(base, "keys")
    with engine.begin() as connection:
        connection.execute(
            sa.update(User)
            .where(User.public_id == account.id)
            .values(email_verified_at=datetime.now(UTC), **values)
        )
    return account


def create(base: str, account: Account) -> requests.Response:
    """POST a new key for `account` on its own connection."""
    return requests.post(
        base + "/api/account/api-keys",
        json={"name": "race", "scopes": ["ai:use"], "currentPassword": PASSWORD},
        headers={"Cookie": f"{COOKIE}={account.cookie}", "Connection": "close"},
        timeout=60,
    )


def key_with_calls_left(base: str, engine: sa.Engine, left: int) -> tuple[str, str]:
    """Sign a FREE user up with `left` API requests left this month; return (user id, secret)."""
    account = verified_user(
        base,
        engine,
        api_requests_used=FREE_LIMIT - left,
        # Far enough ahead that no monthly reset happens during the round.
        api_requests_reset_at=datetime.now(UTC) + timedelta(days=40),
    )
    response = create(base, account)
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


def test_concurrent_creates_never_pass_ten_live_keys(service):
    base, engine = service
    account = verified_user(base, engine)
    for _ in range(8):
        assert create(base, account).status_code == 201
    answers = together(*(partial(create, base, account) for _ in range(6)))
    statuses = Counter(answer.status_code for answer in answers)
    assert statuses == {201: 2, 409: 4}, [a.text[:200] for a in answers]
    listed = requests.get(
        base + "/api/account/api-keys", headers={"Cookie": f"{COOKIE}={account.cookie}"}, timeout=30
    )
    assert len(listed.json()["data"]) == 10


def test_a_key_revoked_on_one_instance_is_refused_by_another_at_once(served_database):
    engine = sa.create_engine(served_database.replace("postgresql://", "postgresql+psycopg://"))
    with gunicorns(service_env(served_database), count=2, workers=1) as (a, b):
        account = verified_user(a.url, engine)
        key = create(a.url, account).json()["data"]
        assert verify(b.url, key["secret"]).status_code == 200
        revoked = requests.delete(
            f"{a.url}/api/account/api-keys/{key['id']}",
            headers={"Cookie": f"{COOKIE}={account.cookie}"},
            timeout=30,
        )
        assert revoked.status_code == 200
        refused = verify(b.url, key["secret"])
    engine.dispose()
    assert refused.status_code == 401
    assert refused.json()["details"] == {"reason": "revoked"}
