"""Scenario 4a: credential stuffing against gunicorn with the default rate limits.

Two workers sharing their counters in Redis (database 13, emptied first; one worker with
in-memory counters when no Redis answers). (a) One address tries many emails: the per-address
login limit (30 a minute) answers 429. (b) Many addresses try one email: each request leaves
from its own loopback address (127.0.0.10, .11, …), and the per-email failure limit (10 per
15 minutes) answers 429 from the 11th.

Run: `.venv/bin/python -m reliability.stuffing` (about 15 s).
"""

from __future__ import annotations

import http.client
import json
import tempfile
import uuid
from collections import Counter
from pathlib import Path
from urllib.parse import urlsplit

import redis
import requests

from .common import PASSWORD, flask_cli, gunicorns, service_env, write_result

REDIS_URI = "redis://127.0.0.1:6379/13"


def login_from(base_url: str, address: str, email: str, password: str) -> tuple[int, str, str]:
    """POST a login from loopback `address`; return (status, code, Retry-After)."""
    parts = urlsplit(base_url)
    connection = http.client.HTTPConnection(
        parts.hostname, parts.port, timeout=10, source_address=(address, 0)
    )
    try:
        connection.request(
            "POST",
            "/api/auth/login",
            body=json.dumps({"email": email, "password": password}),
            headers={"Content-Type": "application/json"},
        )
        response = connection.getresponse()
        body = json.loads(response.read() or b"{}")
        return response.status, body.get("code", ""), response.getheader("Retry-After") or ""
    finally:
        connection.close()


def counter_store() -> tuple[str, int]:
    """Redis database 13 (emptied) and two workers, or memory:// and one worker."""
    try:
        client = redis.Redis.from_url(REDIS_URI, socket_connect_timeout=2)
        client.flushdb()
        client.close()
        return REDIS_URI, 2
    except redis.RedisError:
        return "memory://", 1


def main() -> int:
    """Run the scenario, write reliability/results/stuffing.json, return the exit status."""
    storage, workers = counter_store()
    with tempfile.TemporaryDirectory() as scratch:
        url = f"sqlite:///{Path(scratch) / 'stuffing.db'}"
        env = service_env(url, RATELIMIT_ENABLED="1", RATELIMIT_STORAGE_URI=storage)
        flask_cli(env, "db", "upgrade")
        with gunicorns(env, workers=workers) as (g,):
            victim = f"victim-{uuid.uuid4().hex[:8]}@example.com"
            body = {"email": victim, "password": PASSWORD, "name": "Victim"}
            registered = requests.post(g.url + "/api/auth/register", json=body, timeout=10)
            registered.raise_for_status()

            many_emails = [
                login_from(g.url, "127.0.0.2", f"u{i}-{uuid.uuid4().hex[:6]}@example.com", "x" * 9)
                for i in range(40)
            ]
            many_addresses = [
                login_from(g.url, f"127.0.0.{10 + i}", victim, "wrong password 1")
                for i in range(15)
            ]
            # While the email is locked, even its owner (from yet another address) waits.
            owner = login_from(g.url, "127.0.0.200", victim, PASSWORD)

    def first_429(answers):
        return next((i + 1 for i, (status, _, _) in enumerate(answers) if status == 429), None)

    def statuses(answers):
        return dict(Counter(str(status) for status, _, _ in answers))

    figures = {
        "scenario": "stuffing",
        "counter_store": storage.split(":")[0],
        "workers": workers,
        "one_address_many_emails": {
            "requests": len(many_emails),
            "by_status": statuses(many_emails),
            "first_429_at_attempt": first_429(many_emails),
        },
        "one_email_many_addresses": {
            "requests": len(many_addresses),
            "addresses": len(many_addresses),
            "by_status": statuses(many_addresses),
            "first_429_at_attempt": first_429(many_addresses),
        },
        "owner_with_right_password_while_locked": owner[0],
        "retry_after_present": all(r for s, _, r in many_emails + many_addresses if s == 429),
    }
    figures["passed"] = (
        figures["one_address_many_emails"]["first_429_at_attempt"] == 31
        and figures["one_email_many_addresses"]["first_429_at_attempt"] == 11
        and all(s in (401, 429) for s, _, _ in many_emails + many_addresses)
        and owner[0] == 429
        and figures["retry_after_present"]
    )
    write_result("stuffing", figures)
    return 0 if figures["passed"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
