"""The test clock: `flask clock advance|show|reset`, shared by every process of the service."""

from __future__ import annotations

import secrets
import subprocess
import sys
from datetime import timedelta

import pytest
import sqlalchemy as sa

from smartcv_account import clock
from smartcv_account.extensions import db
from smartcv_account.models import Subscription

from .billing_helpers import SUBSCRIPTION_URL, paid_invoices
from .factories import PASSWORD, UserFactory
from .gunicorn_helpers import ROOT
from .helpers import signed_in, subscribed, subscriber


@pytest.fixture
def clock_file(tmp_path):
    """Where the moved time is kept for this test."""
    return tmp_path / "test-clock.json"


@pytest.fixture
def clock_app(app, app_factory, clock_file):
    """An app whose clock can be moved (made after `app`, which turns it off); real time after."""
    application = app_factory(TEST_CLOCK_FILE=str(clock_file))
    with application.app_context():
        yield application
    clock.use_offset_file(None)


def run(app, *args):
    """Invoke `flask clock ARGS` in-process and return the result."""
    return app.test_cli_runner().invoke(args=["clock", *args])


def test_advance_moves_the_time_the_service_sees(clock_app):
    before = clock.now()
    result = run(clock_app, "advance", "31d")
    assert result.exit_code == 0, result.output
    assert timedelta(days=31) <= clock.now() - before < timedelta(days=31, minutes=1)


@pytest.mark.parametrize(
    ("duration", "moved"),
    [("90m", timedelta(minutes=90)), ("12h", timedelta(hours=12)), ("2d", timedelta(days=2))],
)
def test_advance_understands_minutes_hours_and_days(clock_app, duration, moved):
    assert run(clock_app, "advance", duration).exit_code == 0
    assert clock.offset() == moved


def test_show_prints_the_moved_time(clock_app):
    run(clock_app, "advance", "12h")
    result = run(clock_app, "show")
    assert result.exit_code == 0
    assert clock.isoformat(clock.now())[:13] in result.output
    assert "12:00:00 ahead" in result.output


def test_reset_goes_back_to_real_time(clock_app, clock_file):
    run(clock_app, "advance", "3d")
    assert run(clock_app, "reset").exit_code == 0
    assert clock.offset() == timedelta(0)
    assert not clock_file.exists()


@pytest.mark.parametrize("duration", ["1y", "0d", "1w", "abc", "²d", "1.5d", "9999999d", ""])
def test_invalid_duration_is_one_error_line(clock_app, duration):
    result = run(clock_app, "advance", duration)
    assert result.exit_code == 1
    assert result.output.startswith("Error: ") and result.output.count("\n") == 1
    assert clock.offset() == timedelta(0)


def test_clock_stops_ten_years_ahead(clock_app):
    assert run(clock_app, "advance", "3660d").exit_code == 0
    result = run(clock_app, "advance", "1d")
    assert (result.exit_code, result.output.startswith("Error: ")) == (1, True)


def test_clock_refuses_with_the_stripe_gateway(app_factory, clock_file):
    app = app_factory(TEST_CLOCK_FILE=str(clock_file), BILLING_PROVIDER="stripe")
    with app.app_context():
        result = run(app, "advance", "1d")
    clock.use_offset_file(None)
    assert result.exit_code == 1
    assert "BILLING_PROVIDER=local" in result.output
    assert not clock_file.exists()


@pytest.mark.slow
@pytest.mark.parametrize("command", [["advance", "1d"], ["show"], ["reset"]])
def test_every_clock_command_refuses_in_production(tmp_path, command):
    env = {
        "PATH": "/usr/bin:/bin",
        "SMARTCV_ENV": "production",
        "SECRET_KEY": secrets.token_hex(32),
        "STRIPE_WEBHOOK_SECRET": "whsec_production_like",
        "RATELIMIT_STORAGE_URI": "redis://127.0.0.1:6379/15",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'prod.db'}",
        "TEST_CLOCK_FILE": str(tmp_path / "clock.json"),
    }
    result = subprocess.run(
        [sys.executable, "-m", "flask", "--app", "wsgi", "clock", *command],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1, result.stdout + result.stderr
    assert result.stderr == "Error: the test clock is not available in production\n"
    assert not (tmp_path / "clock.json").exists()


@pytest.mark.slow
def test_time_moved_by_another_process_is_seen_here(clock_app, clock_file, database_url):
    env = {
        "PATH": "/usr/bin:/bin",
        "SMARTCV_ENV": "development",
        "DATABASE_URL": database_url,
        "TEST_CLOCK_FILE": str(clock_file),
    }
    subprocess.run(
        [sys.executable, "-m", "flask", "--app", "wsgi", "clock", "advance", "2d"],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
        timeout=60,
    )
    assert clock.offset() == timedelta(days=2)


def test_sessions_age_with_the_clock(clock_app):
    user = UserFactory()
    client = clock_app.test_client()
    client.post("/api/auth/login", json={"email": user.email, "password": PASSWORD})
    assert client.get("/api/account").status_code == 200
    run(clock_app, "advance", "31d")
    assert client.get("/api/account").status_code == 401


def test_advance_renews_what_fell_due(clock_app, plans):
    user = UserFactory()
    client = signed_in(clock_app, user.email)
    subscribed(client)
    first_end = client.get(SUBSCRIPTION_URL).json["data"]["currentPeriodEnd"]
    run(clock_app, "advance", "20d")
    assert len(paid_invoices()) == 1
    run(clock_app, "advance", "12d")
    assert [invoice.billing_reason for invoice in paid_invoices()] == [
        "subscription_create",
        "subscription_cycle",
    ]
    # 32 days outlive the 30-day session: sign in again.
    client.post("/api/auth/login", json={"email": user.email, "password": PASSWORD})
    assert client.get(SUBSCRIPTION_URL).json["data"]["currentPeriodStart"] == first_end


def test_advance_records_expiries_and_period_ends(clock_app, plans):
    clients = [
        subscriber(clock_app, payment_method=payment_method)
        for payment_method in ("pm_card_authenticationRequired", "pm_card_visa")
    ]
    assert clients[1].put(SUBSCRIPTION_URL, json={"action": "cancel"}).status_code == 200
    run(clock_app, "advance", "1d")
    statuses = db.session.scalars(sa.select(Subscription.status).order_by(Subscription.id))
    assert list(statuses) == ["CANCELED", "ACTIVE"]
    run(clock_app, "advance", "31d")
    db.session.expire_all()
    statuses = db.session.scalars(sa.select(Subscription.status).order_by(Subscription.id))
    assert list(statuses) == ["CANCELED", "CANCELED"]
