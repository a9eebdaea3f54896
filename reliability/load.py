"""A bounded load generator: threads of signed-in users reading and writing over HTTP.

Each thread registers its own user, then loops until stopped (or `max_seconds` pass):
GET /api/account (read), POST internal usage `storage +1` for its user (a counted write) and,
every fifth turn, POST /api/auth/register of a new email (a row write). Every answer is
recorded with its status and whether it is the contract's envelope; a write answered 2xx is
"acknowledged", and `verify()` checks afterwards that each one is in the database.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field

import requests

from .common import INTERNAL_TOKEN, PASSWORD, query

TIMEOUT = 10


@dataclass
class Record:
    """One request's outcome."""

    at: float
    kind: str
    status: int | str  # an HTTP status, or "conn_error" / "timeout"
    envelope: bool


@dataclass
class UserState:
    """One thread's user and what it knows about its writes."""

    public_id: str | None = None
    cookie: str | None = None
    usage_acked: int = 0
    usage_unknown: int = 0  # answered 5xx or not at all: may or may not be stored


@dataclass
class Load:
    """Run `threads` users against `base_url` until `stop()` (bounded by `max_seconds`)."""

    base_url: str
    threads: int = 8
    max_seconds: float = 120
    records: list[Record] = field(default_factory=list)
    emails_acked: list[str] = field(default_factory=list)
    emails_unknown: list[str] = field(default_factory=list)
    users: list[UserState] = field(default_factory=list)
    anomalies: list[str] = field(default_factory=list)  # a 5xx other than 503, or no envelope
    _stop: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _workers: list[threading.Thread] = field(default_factory=list)

    def start(self) -> None:
        """Start the threads."""
        self._deadline = time.monotonic() + self.max_seconds
        for index in range(self.threads):
            state = UserState()
            self.users.append(state)
            worker = threading.Thread(target=self._run, args=(state,), name=f"load-{index}")
            worker.start()
            self._workers.append(worker)

    def stop(self) -> None:
        """Stop the threads and wait for them (each finishes its current request)."""
        self._stop.set()
        for worker in self._workers:
            worker.join(TIMEOUT + 5)

    def _running(self) -> bool:
        return not self._stop.is_set() and time.monotonic() < self._deadline

    def _send(self, kind: str, method: str, path: str, **kwargs) -> requests.Response | None:
        """Send one request and record its outcome; None when no answer came."""
        try:
            response = requests.request(method, self.base_url + path, timeout=TIMEOUT, **kwargs)
        except requests.Timeout:
            self._record(kind, "timeout", False)
            return None
        except requests.ConnectionError:
            self._record(kind, "conn_error", False)
            return None
        envelope = is_envelope(response)
        self._record(kind, response.status_code, envelope)
        if response.status_code >= 500 and response.status_code != 503 or not envelope:
            with self._lock:
                self.anomalies.append(f"{kind} {response.status_code} {response.text[:300]}")
        return response

    def _record(self, kind: str, status: int | str, envelope: bool) -> None:
        with self._lock:
            self.records.append(Record(time.monotonic(), kind, status, envelope))

    def _register(self) -> requests.Response | None:
        email = f"load-{uuid.uuid4().hex[:16]}@example.com"
        body = {"email": email, "password": PASSWORD, "name": "Load"}
        response = self._send("register", "POST", "/api/auth/register", json=body)
        with self._lock:
            if response is not None and response.status_code == 201:
                self.emails_acked.append(email)
            elif response is None or response.status_code >= 500:
                self.emails_unknown.append(email)
        return response

    def _run(self, state: UserState) -> None:
        turn = 0
        while self._running():
            turn += 1
            if state.cookie is None:
                response = self._register()
                if response is not None and response.status_code == 201:
                    state.public_id = response.json()["data"]["id"]
                    state.cookie = response.cookies.get("smartcv_session")
                else:
                    time.sleep(0.05)
                continue
            headers = {"Cookie": f"smartcv_session={state.cookie}"}
            self._send("get_account", "GET", "/api/account", headers=headers)
            response = self._send(
                "usage",
                "POST",
                f"/api/internal/users/{state.public_id}/usage",
                json={"metric": "storage", "delta": 1},
                headers={"Authorization": f"Bearer {INTERNAL_TOKEN}"},
            )
            if response is not None and response.status_code == 200:
                state.usage_acked += 1
            elif response is None or response.status_code >= 500:
                state.usage_unknown += 1
            if turn % 5 == 0:
                self._register()

    # --- figures -----------------------------------------------------------------------------

    def summary(self, since: float | None = None, until: float | None = None) -> dict:
        """Requests sent and answers by status (optionally only within a time window)."""
        chosen = [
            r
            for r in self.records
            if (since is None or r.at >= since) and (until is None or r.at <= until)
        ]
        return {
            "requests": len(chosen),
            "by_status": dict(sorted(Counter(str(r.status) for r in chosen).items())),
            "not_envelope": sum(1 for r in chosen if isinstance(r.status, int) and not r.envelope),
        }

    def verify(self, database_url: str) -> dict:
        """Check every acknowledged write against the database."""
        emails = set(self.emails_acked)
        found_emails = {
            row[0]
            for row in query(database_url, "SELECT email FROM users WHERE email LIKE 'load-%'")
        }
        lost_emails = sorted(emails - found_emails)
        usage_acked = usage_found = 0
        lost_usage = []
        for state in self.users:
            if state.public_id is None:
                continue
            stored = query(
                database_url,
                "SELECT storage_used FROM users WHERE public_id = :id",
                id=state.public_id,
            )[0][0]
            usage_acked += state.usage_acked
            usage_found += stored
            # Acknowledged ≤ stored ≤ acknowledged + unanswered: nothing acknowledged is lost.
            if not state.usage_acked <= stored <= state.usage_acked + state.usage_unknown:
                lost_usage.append((state.public_id, state.usage_acked, stored))
        return {
            "registrations_acknowledged": len(emails),
            "registrations_found": len(emails & found_emails),
            "registrations_unanswered_or_5xx": len(self.emails_unknown),
            "usage_increments_acknowledged": usage_acked,
            "usage_increments_found": usage_found,
            "usage_increments_unanswered_or_5xx": sum(s.usage_unknown for s in self.users),
            "lost_writes": len(lost_emails) + len(lost_usage),
            "lost_examples": (lost_emails + lost_usage)[:5],
        }


def is_envelope(response: requests.Response) -> bool:
    """Tell whether an answer is the contract's JSON envelope (success or error)."""
    try:
        body = response.json()
    except ValueError:
        return False
    if not isinstance(body, dict):
        return False
    if response.status_code < 400:
        return body.get("success") is True or body.get("status") == "ok"
    return (
        body.get("success") is False
        and isinstance(body.get("code"), str)
        and isinstance(body.get("details"), dict)
    )
