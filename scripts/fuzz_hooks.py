"""schemathesis hooks of scripts/fuzz.sh: every answer recorded, and a fresh session per case.

Loaded by schemathesis (`SCHEMATHESIS_HOOKS=scripts/fuzz_hooks.py`), configured by fuzz.sh:

- `FUZZ_RECORD`: a file that gets one line per request: the pass, the operation, the status.
  `fuzz_report.py` turns it into per-operation status counts and the verdict.
- `FUZZ_PASS`: the name of the pass being run, for those lines.
- `FUZZ_SESSIONS=fresh`: give each case a session of its own (the pass of the operations that
  end the session they are sent with). `FUZZ_BASE` is the service's URL, `FUZZ_EMAIL` and
  `FUZZ_PASSWORD` the account the sessions are opened for.

Deleting the account and changing its password end more than a session, so each case of those
gets an account of its own, registered with the document's example password: the document's
examples then succeed. The other cases sign in to the shared account, so the sessions listed by
one step of a stateful scenario are the ones the next step may revoke.

A generated subscription is sometimes given the document's example plan and card, so that a
stateful scenario can create one and follow the links from it: random ids name no plan or card.
"""

from __future__ import annotations

import os
import secrets
import threading
from functools import cache

import requests
import schemathesis
from hypothesis import strategies as st

COOKIE = "smartcv_session"
# Their success deletes the account or changes its password.
OWN_ACCOUNT_PER_CASE = frozenset({"DELETE /api/account", "PUT /api/account/security"})
TIMEOUT = 10

_record_lock = threading.Lock()


@schemathesis.hook
def after_call(context, case, response) -> None:
    """Append the pass, the operation and the status of this answer to FUZZ_RECORD."""
    line = f"{os.environ['FUZZ_PASS']}\t{case.operation.label}\t{response.status_code}\n"
    with _record_lock, open(os.environ["FUZZ_RECORD"], "a", encoding="utf-8") as record:
        record.write(line)


@cache
def _example(path: str) -> dict:
    """The document's example request body of POST `path`."""
    document = requests.get(os.environ["FUZZ_BASE"] + "/api/openapi.json", timeout=TIMEOUT)
    operation = document.json()["paths"][path]["post"]
    return operation["requestBody"]["content"]["application/json"]["example"]


@schemathesis.hook.apply_to(method="POST", path="/api/account/subscription")
def flatmap_body(context, body):
    """Send a generated subscription as it is, or with the example's plan and card."""
    if not isinstance(body, dict):
        return st.just(body)
    example = _example("/api/account/subscription")
    known = {key: example[key] for key in ("planId", "paymentMethodId")}
    return st.sampled_from([body, {**body, **known}])


def _session(path: str, body: dict) -> str:
    """POST `body` to `path` (a sign-up or a sign-in) and return the session cookie it sets."""
    response = requests.post(os.environ["FUZZ_BASE"] + path, json=body, timeout=TIMEOUT)
    response.raise_for_status()
    return response.cookies[COOKIE]


class FreshSession:
    """A new session for every case: nothing one case ends is what the next one uses."""

    def get(self, case, context) -> str:
        """Open the session this case is sent with."""
        if case.operation.label in OWN_ACCOUNT_PER_CASE:
            body = {
                "email": f"fuzz-{secrets.token_hex(8)}@example.com",
                "password": _example("/api/auth/register")["password"],
                "name": "Fuzz",
            }
            return _session("/api/auth/register", body)
        body = {"email": os.environ["FUZZ_EMAIL"], "password": os.environ["FUZZ_PASSWORD"]}
        return _session("/api/auth/login", body)

    def set(self, case, data: str, context) -> None:
        """Send the session's cookie with the case."""
        case.cookies = {**(case.cookies or {}), COOKIE: data}


if os.environ.get("FUZZ_SESSIONS") == "fresh":
    # No caching: `get` runs for every case.
    schemathesis.auth(refresh_interval=None)(FreshSession)
