"""Operators' errors: one `Error: ...` line and exit status 1, never a traceback."""

from __future__ import annotations

import secrets
import subprocess
import sys

import pytest
import sqlalchemy as sa

from smartcv_account.config import ConfigError, check_production_safety
from smartcv_account.extensions import db
from smartcv_account.models import Subscription

from .billing_helpers import change, subscribe
from .gunicorn_helpers import ROOT, service_env


def one_error_line(output: str) -> str:
    """The single `Error: ...` line an operator sees; fail on a traceback or extra lines."""
    lines = [line for line in output.strip().splitlines() if line.strip()]
    assert "Traceback" not in output, output
    assert len(lines) == 1 and lines[0].startswith("Error: "), output
    return lines[0]


def flask(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    """Run `flask --app wsgi ARGS` as an operator does."""
    return subprocess.run(
        [sys.executable, "-m", "flask", "--app", "wsgi", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


# --- in-process commands -----------------------------------------------------------------------


def test_local_authenticate_with_an_unknown_id(runner):
    result = runner.invoke(args=["local-authenticate", "pi_unknown"])
    assert result.exit_code == 1
    assert "pi_unknown" in one_error_line(result.output)


def test_local_authenticate_twice(runner, auth_client, plans):
    created = subscribe(auth_client, payment_method="pm_card_authenticationRequired").json["data"]
    intent = created["clientSecret"].split("_secret_")[0]
    assert runner.invoke(args=["local-authenticate", intent]).exit_code == 0
    again = runner.invoke(args=["local-authenticate", intent])
    assert again.exit_code == 1
    one_error_line(again.output)


def test_assign_plan_twice_is_a_no_op(runner, user, plans):
    assert runner.invoke(args=["assign-plan", user.email, "plan_enterprise"]).exit_code == 0
    again = runner.invoke(args=["assign-plan", user.email, "plan_enterprise"])
    assert again.exit_code == 0, again.output
    assert "no change" in again.output
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Subscription)) == 1


def test_assign_plan_explains_a_paid_subscription_canceled_at_period_end(
    runner, premium_client, user
):
    assert change(premium_client, "cancel").status_code == 200
    result = runner.invoke(args=["assign-plan", user.email, "plan_enterprise"])
    assert result.exit_code == 1
    line = one_error_line(result.output)
    assert "already canceled" in line and "after that date" in line


def test_assign_plan_with_an_unknown_plan(runner, user, plans):
    result = runner.invoke(args=["assign-plan", user.email, "plan_gold"])
    assert result.exit_code == 1
    assert "plan_gold" in one_error_line(result.output)


# --- configuration -------------------------------------------------------------------------------


def _production(**overrides) -> dict:
    """A production configuration that passes every check, with overrides."""
    return {
        "ENV_NAME": "production",
        "SECRET_KEY": secrets.token_hex(32),
        "STRIPE_WEBHOOK_SECRET": "whsec_real",
        "RATELIMIT_STORAGE_URI": "redis://redis.internal:6379/0",
        **overrides,
    }


def test_a_long_but_predictable_secret_key_is_refused():
    with pytest.raises(ConfigError, match="SECRET_KEY"):
        check_production_safety(_production(SECRET_KEY="a" * 42))


@pytest.mark.parametrize("storage", ["memory://", ""])
def test_per_worker_rate_limit_storage_is_refused_with_what_to_set(storage):
    with pytest.raises(ConfigError, match=r"RATELIMIT_STORAGE_URI.*redis://"):
        check_production_safety(_production(RATELIMIT_STORAGE_URI=storage))


def test_a_random_secret_key_is_accepted():
    check_production_safety(_production())
    for _ in range(300):  # every random key, not most of them
        check_production_safety(_production(SECRET_KEY=secrets.token_hex(16)))


# --- the `flask` entry point, as an operator runs it --------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"SMARTCV_ENV": "production", "SECRET_KEY": "a" * 42}, "SECRET_KEY"),
        ({"SMARTCV_ENV": "staging"}, "SMARTCV_ENV"),
    ],
    ids=["predictable-secret", "unknown-environment"],
)
def test_refusals_under_flask_are_one_line(tmp_path, overrides, expected):
    env = service_env(f"sqlite:///{tmp_path / 'x.db'}", **overrides)
    result = flask(env, "seed-plans")
    assert result.returncode == 1
    assert expected in one_error_line(result.stderr)


@pytest.mark.slow
@pytest.mark.parametrize("args", [["seed-plans"], ["assign-plan", "a@example.com", "plan_free"]])
def test_a_database_without_tables_is_one_line(tmp_path, args):
    result = flask(service_env(f"sqlite:///{tmp_path / 'empty.db'}"), *args)
    assert result.returncode == 1
    assert "db upgrade" in one_error_line(result.stderr)


@pytest.mark.slow
def test_a_database_that_cannot_be_opened_is_one_line(tmp_path):
    result = flask(service_env(f"sqlite:///{tmp_path / 'missing' / 'x.db'}"), "db", "upgrade")
    assert result.returncode == 1
    assert "DATABASE_URL" in one_error_line(result.stderr)
