"""Safe retries: `Idempotency-Key` on subscription changes and the internal usage API."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
import sqlalchemy as sa

from smartcv_account import clock, idempotency
from smartcv_account.extensions import db
from smartcv_account.models import IdempotencyKey, Subscription
from smartcv_account.services import usage

from .billing_helpers import SUBSCRIPTION_URL
from .factories import UserFactory
from .helpers import INTERNAL_TOKEN, post_usage, stored


def keyed(key: str) -> dict:
    """The header that sends `key`."""
    return {"Idempotency-Key": key}


RESUME = {"metric": "resumes", "delta": 1}


# --- replay, reuse, validation ----------------------------------------------------------------


def test_a_repeat_replays_the_first_answer_and_changes_nothing(client, user):
    first = post_usage(client, user.public_id, RESUME, headers=keyed("k-1"))
    again = post_usage(client, user.public_id, RESUME, headers=keyed("k-1"))
    assert first.status_code == again.status_code == 200
    assert again.get_json() == first.get_json()
    assert again.headers["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first.headers
    assert stored(user.public_id)[0] == 1


def test_the_same_json_with_other_spacing_is_the_same_body(client, user):
    post_usage(client, user.public_id, RESUME, headers=keyed("k-1"))
    again = client.post(
        f"/api/internal/users/{user.public_id}/usage",
        data='{ "delta" : 1, "metric": "resumes" }',
        content_type="application/json",
        headers={"Authorization": f"Bearer {INTERNAL_TOKEN}", **keyed("k-1")},
    )
    assert again.headers["Idempotent-Replayed"] == "true"
    assert stored(user.public_id)[0] == 1


def test_another_body_under_the_same_key_is_422(client, user, assert_error):
    post_usage(client, user.public_id, RESUME, headers=keyed("k-1"))
    response = post_usage(
        client, user.public_id, {"metric": "resumes", "delta": 2}, headers=keyed("k-1")
    )
    assert_error(response, 422, "IDEMPOTENCY_KEY_REUSED", "Idempotency-Key")
    assert stored(user.public_id)[0] == 1


def test_without_a_key_every_call_counts(client, user):
    post_usage(client, user.public_id, RESUME)
    post_usage(client, user.public_id, RESUME)
    assert stored(user.public_id)[0] == 2


def test_a_key_reused_on_another_path_is_422(app, user):
    other = UserFactory()
    client = app.test_client()
    post_usage(client, user.public_id, RESUME, headers=keyed("shared"))
    # The same caller (the token) on another path sends another request: refused, not mixed up.
    response = post_usage(client, other.public_id, RESUME, headers=keyed("shared"))
    assert response.status_code == 422
    assert stored(other.public_id)[0] == 0


@pytest.mark.parametrize("key", ["", "x" * 256, "tab\there", "caf\u00e9"])
def test_a_malformed_key_is_a_validation_error(client, user, assert_error, key):
    response = post_usage(client, user.public_id, RESUME, headers={"Idempotency-Key": key})
    assert_error(response, 400, "VALIDATION_ERROR", "Idempotency-Key")
    assert stored(user.public_id)[0] == 0


def test_a_key_of_255_printable_characters_is_accepted(client, user):
    response = post_usage(client, user.public_id, RESUME, headers=keyed("~" * 255))
    assert response.status_code == 200


# --- which answers are kept ----------------------------------------------------------------------


def test_a_refusal_is_kept_and_replayed(client, user):
    too_many = {"metric": "resumes", "delta": 6}  # FREE allows 5
    first = post_usage(client, user.public_id, too_many, headers=keyed("big"))
    again = post_usage(client, user.public_id, too_many, headers=keyed("big"))
    assert first.status_code == again.status_code == 429
    assert again.get_json() == first.get_json()
    assert again.headers["Idempotent-Replayed"] == "true"


def test_a_server_error_is_not_kept_and_the_retry_runs(client, user, monkeypatch):
    real = usage.record_usage
    monkeypatch.setattr(usage, "record_usage", _raises(RuntimeError("boom")))
    assert post_usage(client, user.public_id, RESUME, headers=keyed("k")).status_code == 500
    assert stored(user.public_id)[0] == 0
    monkeypatch.setattr(usage, "record_usage", real)
    retry = post_usage(client, user.public_id, RESUME, headers=keyed("k"))
    assert retry.status_code == 200
    assert "Idempotent-Replayed" not in retry.headers
    assert stored(user.public_id)[0] == 1


def _raises(error: Exception):
    """A stand-in service that fails."""

    def fail(*_args, **_kwargs):
        raise error

    return fail


# --- concurrency and dead owners -----------------------------------------------------------------


def _held(real, started: threading.Event, release: threading.Event, after: bool):
    """Wrap the usage service so the first call pauses (before or after its write)."""
    calls = []

    def held(*args, **kwargs):
        calls.append(1)
        if len(calls) == 1 and not after:
            started.set()
            assert release.wait(20)
        result = real(*args, **kwargs)
        if len(calls) == 1 and after:
            started.set()
            assert release.wait(20)
        return result

    return held


def test_a_repeat_while_the_first_runs_is_409(app, user, monkeypatch, assert_error):
    started, release = threading.Event(), threading.Event()
    monkeypatch.setattr(usage, "record_usage", _held(usage.record_usage, started, release, True))
    with ThreadPoolExecutor(1) as pool:
        first = pool.submit(
            post_usage,
            app.test_client(),
            user.public_id,
            RESUME,
            INTERNAL_TOKEN,
            headers=keyed("slow"),
        )
        assert started.wait(20)
        try:
            repeat = post_usage(app.test_client(), user.public_id, RESUME, headers=keyed("slow"))
        finally:
            release.set()
        assert first.result().status_code == 200
    assert_error(repeat, 409, "IDEMPOTENCY_KEY_IN_USE", "Idempotency-Key")
    assert stored(user.public_id)[0] == 1
    replay = post_usage(app.test_client(), user.public_id, RESUME, headers=keyed("slow"))
    assert replay.headers["Idempotent-Replayed"] == "true"


def _orphan_claim(client, user, owner: str, now) -> None:
    """What a worker killed mid-request leaves: the claim, no answer, and no change."""
    db.session.add(
        IdempotencyKey(
            caller="internal:" + _token_digest(),
            key="orphan",
            fingerprint=_fingerprint_of(client, user),
            owner=owner,
            locked_until=now + timedelta(seconds=60),
            created_at=now,
            expires_at=now + timedelta(hours=24),
        )
    )
    db.session.commit()


def _dead_pid() -> int:
    """The id of a process that has ended."""
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def test_a_claim_whose_owner_died_is_run_by_the_repeat_at_once(client, user, frozen_clock):
    # PostgreSQL: no connection holds the key's advisory lock. SQLite: the owner's process
    # is gone. Either way the lease is not waited for.
    _orphan_claim(client, user, f"{_dead_pid()}:dead-worker", frozen_clock)
    repeat = post_usage(client, user.public_id, RESUME, headers=keyed("orphan"))
    assert repeat.status_code == 200
    assert "Idempotent-Replayed" not in repeat.headers  # a fresh answer: it had not happened
    assert stored(user.public_id)[0] == 1


def test_on_sqlite_a_claim_of_a_live_process_waits_for_its_lease(app, client, user, frozen_clock):
    if db.engine.dialect.name != "sqlite":
        pytest.skip("on PostgreSQL a live owner holds the key's advisory lock: there is no lease")
    _orphan_claim(client, user, f"{os.getpid()}:this-process", frozen_clock)
    early = post_usage(client, user.public_id, RESUME, headers=keyed("orphan"))
    assert early.status_code == 409  # the lease still runs: it may be alive
    clock.freeze(frozen_clock + timedelta(seconds=61))
    late = post_usage(client, user.public_id, RESUME, headers=keyed("orphan"))
    assert late.status_code == 200
    assert stored(user.public_id)[0] == 1


def _token_digest() -> str:
    """The internal token as the service names its caller."""
    return hashlib.sha256(INTERNAL_TOKEN.encode()).hexdigest()[:32]


def _fingerprint_of(client, user) -> str:
    """The fingerprint of a RESUME call for `user`."""
    path = f"/api/internal/users/{user.public_id}/usage"
    return idempotency.fingerprint("POST", path, json.dumps(RESUME).encode())


def test_an_owner_overtaken_after_its_lease_commits_nothing(app, user, monkeypatch, frozen_clock):
    if db.engine.dialect.name != "sqlite":
        pytest.skip("on PostgreSQL a live owner holds the key's advisory lock: there is no lease")
    # The first request stalls past its lease; a repeat takes the key over and runs. When the
    # first wakes up its answer cannot be stored, so its change rolls back with it.
    started, release = threading.Event(), threading.Event()
    monkeypatch.setattr(usage, "record_usage", _held(usage.record_usage, started, release, False))
    with ThreadPoolExecutor(1) as pool:
        first = pool.submit(
            post_usage,
            app.test_client(),
            user.public_id,
            RESUME,
            INTERNAL_TOKEN,
            headers=keyed("stall"),
        )
        assert started.wait(20)
        clock.freeze(frozen_clock + timedelta(seconds=61))
        try:
            repeat = post_usage(app.test_client(), user.public_id, RESUME, headers=keyed("stall"))
        finally:
            release.set()
        late = first.result()
    assert repeat.status_code == 200
    assert late.status_code == 409
    assert stored(user.public_id)[0] == 1


# --- the subscription endpoints --------------------------------------------------------------


def test_a_repeated_subscribe_makes_one_subscription(auth_client, plans):
    body = {"planId": "plan_premium_monthly", "paymentMethodId": "pm_card_visa"}
    first = auth_client.post(SUBSCRIPTION_URL, json=body, headers=keyed("sub-1"))
    again = auth_client.post(SUBSCRIPTION_URL, json=body, headers=keyed("sub-1"))
    assert first.status_code == again.status_code == 201
    assert again.json == first.json
    assert again.headers["Idempotent-Replayed"] == "true"
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Subscription)) == 1


def test_a_repeated_change_is_applied_once(auth_client, plans):
    body = {"planId": "plan_premium_monthly", "paymentMethodId": "pm_card_visa"}
    assert auth_client.post(SUBSCRIPTION_URL, json=body).status_code == 201
    cancel = {"action": "cancel"}
    first = auth_client.put(SUBSCRIPTION_URL, json=cancel, headers=keyed("c-1"))
    again = auth_client.put(SUBSCRIPTION_URL, json=cancel, headers=keyed("c-1"))
    assert first.status_code == 200, first.json
    assert again.json == first.json and again.headers["Idempotent-Replayed"] == "true"


def test_session_keys_are_per_user(app, plans):
    from .factories import PASSWORD

    body = {"planId": "plan_premium_monthly", "paymentMethodId": "pm_card_visa"}
    for _ in range(2):
        person = UserFactory()
        client = app.test_client()
        client.post("/api/auth/login", json={"email": person.email, "password": PASSWORD})
        response = client.post(SUBSCRIPTION_URL, json=body, headers=keyed("same-key"))
        assert response.status_code == 201
        assert "Idempotent-Replayed" not in response.headers


# --- expiry ------------------------------------------------------------------------------------


def test_prune_removes_keys_older_than_a_day(app, client, user, runner, frozen_clock):
    post_usage(client, user.public_id, RESUME, headers=keyed("old"))
    clock.freeze(frozen_clock + timedelta(hours=23))
    post_usage(client, user.public_id, RESUME, headers=keyed("young"))
    clock.freeze(frozen_clock + timedelta(hours=24, seconds=1))
    result = runner.invoke(args=["prune-idempotency"])
    assert result.exit_code == 0, result.output
    assert "1" in result.output
    keys = db.session.scalars(sa.select(IdempotencyKey.key)).all()
    assert keys == ["young"]


def test_an_expired_key_runs_again(client, user, frozen_clock):
    post_usage(client, user.public_id, RESUME, headers=keyed("k"))
    clock.freeze(frozen_clock + timedelta(hours=24, seconds=1))
    again = post_usage(client, user.public_id, RESUME, headers=keyed("k"))
    assert "Idempotent-Replayed" not in again.headers
    assert stored(user.public_id)[0] == 2
