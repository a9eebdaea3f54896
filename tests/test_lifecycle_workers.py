"""Session revocation and account deletion under gunicorn: every worker sees them at once.

Each worker remembers what its session check read (services/sessions.py); a revocation made
through one worker must still end the session on the other. The response's generated request
id starts with a per-process prefix (logs.py), which tells which worker answered.
"""

from __future__ import annotations

import pytest
import requests

from .factories import PASSWORD
from .gunicorn_helpers import COOKIE, gunicorns, service_env, sign_up

pytestmark = pytest.mark.slow

PREFIX = 20  # hex characters of a worker's request-id prefix


def call(method: str, url: str, cookie: str, **kwargs) -> requests.Response:
    """One request on a new connection (so either worker may take it), with the cookie."""
    headers = {"Cookie": f"{COOKIE}={cookie}", "Connection": "close"}
    return requests.request(method, url, headers=headers, timeout=10, **kwargs)


def statuses_per_worker(base_url: str, cookie: str) -> dict[str, set[int]]:
    """GET /api/account until both workers answered; return the statuses each one gave."""
    seen: dict[str, set[int]] = {}
    for _ in range(200):
        response = call("GET", base_url + "/api/account", cookie)
        seen.setdefault(response.headers["X-Request-ID"][:PREFIX], set()).add(response.status_code)
        if len(seen) == 2:
            break
    assert len(seen) == 2, "only one worker answered"
    return seen


def sign_in(base_url: str, email: str) -> str:
    """Log in as `email`; return the session cookie."""
    response = requests.post(
        base_url + "/api/auth/login", json={"email": email, "password": PASSWORD}, timeout=10
    )
    assert response.status_code == 200, response.text
    return response.cookies[COOKIE]


def test_revocation_and_deletion_are_seen_by_every_worker(served_database):
    with gunicorns(service_env(served_database), count=1, workers=2) as (server,):
        account = sign_up(server.url, "workers")
        laptop = account.cookie
        phone = sign_in(server.url, account.email)
        assert all(s == {200} for s in statuses_per_worker(server.url, phone).values())

        listed = call("GET", server.url + "/api/account/sessions", laptop).json()["data"]
        [phone_id] = [s["id"] for s in listed if not s["current"]]
        revoked = call("DELETE", f"{server.url}/api/account/sessions/{phone_id}", laptop)
        assert revoked.status_code == 200, revoked.text
        assert all(s == {401} for s in statuses_per_worker(server.url, phone).values())

        assert all(s == {200} for s in statuses_per_worker(server.url, laptop).values())
        deleted = call(
            "DELETE", server.url + "/api/account", laptop, json={"currentPassword": PASSWORD}
        )
        assert deleted.status_code == 200, deleted.text
        assert all(s == {401} for s in statuses_per_worker(server.url, laptop).values())
