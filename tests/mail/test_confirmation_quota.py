"""At most 3 email-change confirmations an hour go to one address, whoever asks."""

from __future__ import annotations

import hashlib
import threading
from datetime import timedelta

import pytest
import sqlalchemy as sa

from smartcv_account import clock
from smartcv_account.extensions import db
from smartcv_account.mail import quota
from smartcv_account.models import ConfirmationMailCount, OutboxMessage

from ..factories import PASSWORD, UserFactory
from ..helpers import signed_in

TARGET = "target@example.com"


@pytest.fixture
def limited_app(app_factory, frozen_clock):
    """The app with its limits on, the clock frozen, an application context pushed."""
    application = app_factory(RATELIMIT_ENABLED=True, RATELIMIT_STORAGE_URI="memory://")
    with application.app_context():
        yield application
        db.session.remove()


def ask_to_move(app, address: str = TARGET):
    """A new account asks to move to `address`; return the response."""
    client = signed_in(app, UserFactory().email)
    body = {"newEmail": address, "currentPassword": PASSWORD}
    return client.post("/api/account/email", json=body)


def confirmations_to(address: str) -> int:
    """How many confirmation messages the outbox holds for `address`."""
    db.session.expire_all()
    return db.session.scalar(
        sa.select(sa.func.count()).where(
            OutboxMessage.to_address == address, OutboxMessage.kind == "email_change_confirm"
        )
    )


def test_the_fourth_confirmation_to_one_address_in_an_hour_is_refused(limited_app, assert_error):
    answers = [ask_to_move(limited_app) for _ in range(10)]

    assert [a.status_code for a in answers] == [202] * 3 + [429] * 7
    body = assert_error(answers[3], 429, "RATE_LIMITED")
    assert answers[3].headers["Retry-After"] == "3600" == str(body["details"]["retryAfter"])
    assert confirmations_to(TARGET) == 3
    assert ask_to_move(limited_app, "someone.else@example.com").status_code == 202


def test_the_address_may_receive_confirmations_again_after_the_hour(limited_app, frozen_clock):
    assert [ask_to_move(limited_app).status_code for _ in range(4)] == [202] * 3 + [429]
    clock.freeze(frozen_clock + timedelta(minutes=59, seconds=59))
    assert ask_to_move(limited_app).status_code == 429
    clock.freeze(frozen_clock + timedelta(hours=1))
    assert [ask_to_move(limited_app).status_code for _ in range(4)] == [202] * 3 + [429]
    assert confirmations_to(TARGET) == 6


def test_the_count_keeps_only_the_addresss_sha256(limited_app):
    assert ask_to_move(limited_app).status_code == 202
    rows = db.session.execute(sa.select(ConfirmationMailCount.__table__)).all()
    assert len(rows) == 1 and TARGET not in str(rows)
    assert rows[0].address_hash == hashlib.sha256(TARGET.encode()).hexdigest()


def test_the_worker_drops_counts_whose_hour_is_over(limited_app, frozen_clock):
    ask_to_move(limited_app)
    ask_to_move(limited_app, "other@example.com")
    clock.freeze(frozen_clock + timedelta(hours=1))
    assert quota.prune() == 2
    db.session.commit()


def test_limits_off_turn_it_off(app_factory):
    application = app_factory(RATELIMIT_ENABLED=False)
    with application.app_context():
        assert [ask_to_move(application).status_code for _ in range(4)] == [202] * 4


def test_concurrent_reservations_never_let_a_fourth_through(limited_app):
    """Eight workers reserve for one address at once: exactly three succeed."""
    start = threading.Barrier(8)
    outcomes: list[str] = []

    def reserve() -> None:
        with limited_app.app_context():
            start.wait()
            try:
                quota.reserve_confirmation(TARGET)
                db.session.commit()
                outcomes.append("sent")
            except Exception as error:  # noqa: BLE001 - the outcome is what the test reads
                db.session.rollback()
                outcomes.append(getattr(error, "code", type(error).__name__))
            finally:
                db.session.remove()

    threads = [threading.Thread(target=reserve) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(outcomes) == ["RATE_LIMITED"] * 5 + ["sent"] * 3
