"""Two gunicorn instances on one database (and one Redis) behave as one service.

Each instance runs two workers, so a request pair also crosses processes inside an instance.
The database is a temporary SQLite file, or the PostgreSQL database of DATABASE_URL; either is
migrated with `flask --app wsgi db upgrade`, as the Procfile's release step does.
"""

from __future__ import annotations

import json
import runpy
import types
import uuid

import pytest
import redis
import requests
import sqlalchemy as sa

from smartcv_account import create_app
from smartcv_account.config import DEV_SECRET_KEY, ConfigError
from smartcv_account.extensions import db

from .conftest import TEST_CONFIG
from .gunicorn_helpers import COOKIE, ROOT, gunicorns, service_env, sign_up, start, stop

pytestmark = pytest.mark.slow

REDIS_URI = "redis://127.0.0.1:6379/14"


def _get_account(base_url: str, cookie: str, request_id: str = "") -> requests.Response:
    """GET /api/account with the cookie passed by hand (a fresh client, no shared jar)."""
    headers = {"Cookie": f"{COOKIE}={cookie}"}
    if request_id:
        headers["X-Request-ID"] = request_id
    return requests.get(base_url + "/api/account", headers=headers, timeout=10)


def test_session_made_on_one_instance_works_and_ends_on_the_other(served_database):
    with gunicorns(service_env(served_database), count=2) as (a, b):
        account = sign_up(a.url, "multi")
        email, cookie = account.email, account.cookie

        on_b = _get_account(b.url, cookie)
        assert on_b.status_code == 200, on_b.text
        assert on_b.json()["data"]["email"] == email

        logout = requests.post(
            a.url + "/api/auth/logout", headers={"Cookie": f"{COOKIE}={cookie}"}, timeout=10
        )
        assert logout.status_code == 200, logout.text

        after = _get_account(b.url, cookie, request_id="lb-trace-42")
        assert after.status_code == 401
        assert after.json()["code"] == "UNAUTHORIZED"
        # As deployed, the app's own JSON line is the access log, keyed by the caller's id.
        assert after.headers["X-Request-ID"] == "lb-trace-42"
        lines = [
            json.loads(line)
            for line in b.log().splitlines()
            if line.startswith("{") and "lb-trace-42" in line
        ]
    assert [(line["method"], line["path"], line["status"]) for line in lines] == [
        ("GET", "/api/account", 401)
    ]


@pytest.fixture
def shared_redis() -> str:
    """Redis database 14, emptied; the test is skipped when no Redis answers on loopback."""
    client = redis.Redis.from_url(REDIS_URI, socket_connect_timeout=2)
    try:
        client.flushdb()
    except redis.RedisError as error:
        pytest.skip(f"Redis at {REDIS_URI} is unreachable ({error}); cannot share rate limits")
    finally:
        client.close()
    return REDIS_URI


def test_failed_login_limit_is_shared_between_instances(served_database, shared_redis):
    env = service_env(
        served_database,
        RATELIMIT_ENABLED="1",
        RATELIMIT_STORAGE_URI=shared_redis,
        RATELIMIT_LOGIN_FAILURES_PER_EMAIL="3 per 15 minutes",
    )
    attempt = {"email": f"victim-{uuid.uuid4().hex[:8]}@example.com", "password": "wrong-guess"}
    with gunicorns(env, count=2) as (a, b):
        # Separate connections land on either worker of A; the count must still reach 3.
        for _ in range(3):
            failed = requests.post(a.url + "/api/auth/login", json=attempt, timeout=10)
            assert failed.status_code == 401, failed.text

        limited = requests.post(b.url + "/api/auth/login", json=attempt, timeout=10)

    assert limited.status_code == 429, limited.text
    assert limited.json()["code"] == "RATE_LIMITED"
    assert int(limited.headers["Retry-After"]) > 0


def test_gunicorn_refuses_to_start_in_production_with_the_dev_secret_key(migrated_url):
    env = service_env(migrated_url, SMARTCV_ENV="production")
    del env["SECRET_KEY"]
    process = start(env)
    try:
        assert process.process.wait(60) != 0
        assert "SECRET_KEY must be set" in process.log()
    finally:
        stop(process.process)
        process.log_path.unlink(missing_ok=True)


def test_the_factory_refuses_production_with_the_dev_secret_key(monkeypatch):
    monkeypatch.setenv("SMARTCV_ENV", "production")
    monkeypatch.setenv("SECRET_KEY", DEV_SECRET_KEY)
    with pytest.raises(ConfigError, match="SECRET_KEY"):
        create_app()


def test_post_fork_gives_the_worker_a_fresh_pool(tmp_path):
    hooks = runpy.run_path(str(ROOT / "gunicorn.conf.py"))
    app = create_app({**TEST_CONFIG, "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'f.db'}"})
    with app.app_context():
        engine = db.engine
        with engine.connect() as connection:
            connection.execute(sa.text("SELECT 1"))
        inherited_pool = engine.pool

    server = types.SimpleNamespace(app=types.SimpleNamespace(callable=app))
    hooks["post_fork"](server, worker=None)

    with app.app_context():
        assert db.engine.pool is not inherited_pool  # the master's connections are not reused
        db.engine.dispose()
