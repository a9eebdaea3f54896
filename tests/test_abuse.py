"""Hostile input on every field of every endpoint: a 4xx envelope, and nothing changed.

Table-driven: each endpoint's fields get oversized, deeply nested, wrongly typed,
injection-shaped and unicode-confusable values. A refused request must answer the contract's
error envelope with a 4xx status and leave every table exactly as it was. A few values are
legitimately plain text (a name of "<script>"): those are accepted, stored verbatim and
returned JSON-encoded; ACCEPTED_AS_TEXT lists them, and docs/reliability.md explains why.
"""

from __future__ import annotations

import copy
import json
from typing import Any

import pyotp
import pytest
import sqlalchemy as sa

from smartcv_account.extensions import db

from .billing_helpers import subscribe
from .conftest import TEST_CONFIG
from .factories import PASSWORD, UserFactory

STRONG = "violet tugboat climbs seventeen ladders"
TOKEN = TEST_CONFIG["INTERNAL_API_TOKEN"]
RTL_OVERRIDE = "\u202egnp.exe"  # shows as "exe.png" in a bidi-aware UI


def nested(depth: int) -> Any:
    """A list nested `depth` levels deep, holding a string."""
    value: Any = "x"
    for _ in range(depth):
        value = [value]
    return value


VALUES: dict[str, Any] = {
    "oversized": "x" * 10_000,
    "nested": nested(50),
    "nested_dict": {"a": {"b": {"c": {"d": {"e": "x"}}}}},
    "list": ["a"],
    "dict": {"a": 1},
    "number": 12345,
    "float": 1.5,
    "bool": True,
    "null": None,
    "sql": "' OR 1=1 --",
    "html": "<script>alert(1)</script>",
    "jndi": "${jndi:ldap://127.0.0.1/a}",
    "path": "../../etc/passwd",
    "crlf": "a\r\nSet-Cookie: stolen=1",
    "rtl": RTL_OVERRIDE,
    "fullwidth": "\uff11\uff12\uff13\uff14\uff15\uff16",  # "123456" in full-width digits
}

# (endpoint, field, kind) combinations that are legitimate input, not abuse: free text stored
# verbatim (name), any text as a password, and values the contract allows (null avatar/coupon).
TEXT_KINDS = ("sql", "html", "jndi", "path", "crlf", "rtl", "fullwidth")
ACCEPTED_AS_TEXT = {
    *(("register", "name", kind) for kind in TEXT_KINDS),
    *(("account", "name", kind) for kind in TEXT_KINDS),
    *(("register", "password", kind) for kind in TEXT_KINDS),
    ("account", "avatar", "null"),
    ("account", "preferences.emailNotifications", "bool"),
    ("account", "preferences.marketingEmails", "bool"),
    ("security", "twoFactorEnabled", "bool"),
    ("usage", "delta", "number"),
    ("subscription_create", "couponCode", "null"),
}


def endpoints(user_email: str) -> dict[str, dict[str, Any]]:
    """Each endpoint: method, URL, and per field the valid body that field is mutated in."""
    register = {"email": "fresh@example.com", "password": STRONG, "name": "Fresh"}
    security = {"currentPassword": PASSWORD, "newPassword": STRONG, "confirmPassword": STRONG}
    upgrade = {
        "action": "upgrade",
        "planId": "plan_premium_yearly",
        "prorationBehavior": "create_prorations",
    }
    card = {"action": "update_payment_method", "paymentMethodId": "pm_card_visa"}
    create = {"planId": "plan_premium_monthly", "paymentMethodId": "pm_card_visa"}
    return {
        "register": {
            "method": "POST",
            "url": "/api/auth/register",
            "fields": {"email": register, "password": register, "name": register},
        },
        "login": {
            "method": "POST",
            "url": "/api/auth/login",
            "fields": {
                "email": {"email": user_email, "password": PASSWORD},
                "password": {"email": user_email, "password": PASSWORD},
                "twoFactorCode": {"email": "2fa@example.com", "password": PASSWORD},
            },
        },
        "account": {
            "method": "PUT",
            "url": "/api/account",
            "fields": {
                "name": {"name": "Ann"},
                "avatar": {"avatar": "https://example.com/a.png"},
                "preferences": {"preferences": {"theme": "dark"}},
                **{
                    f"preferences.{key}": {"preferences": {"theme": "dark"}}
                    for key in (
                        "language",
                        "timezone",
                        "theme",
                        "emailNotifications",
                        "marketingEmails",
                    )
                },
            },
        },
        "security": {
            "method": "PUT",
            "url": "/api/account/security",
            "fields": {
                "currentPassword": security,
                "newPassword": security,
                "confirmPassword": security,
                "twoFactorEnabled": {"currentPassword": PASSWORD, "twoFactorEnabled": True},
            },
        },
        "delete_account": {
            "method": "DELETE",
            "url": "/api/account",
            "fields": {
                "currentPassword": {"currentPassword": PASSWORD},
                "twoFactorCode": {"currentPassword": "not the password"},
            },
        },
        "subscription_update": {
            "method": "PUT",
            "url": "/api/account/subscription",
            "fields": {
                "action": upgrade,
                "planId": upgrade,
                "prorationBehavior": upgrade,
                "paymentMethodId": card,
            },
        },
        # Last: a create that is legitimately accepted makes the subscription the others need
        # not to exist, and couponCode (whose null is accepted) is its last field.
        "subscription_create": {
            "method": "POST",
            "url": "/api/account/subscription",
            "fields": {"planId": create, "paymentMethodId": create, "couponCode": create},
        },
        "usage": {
            "method": "POST",
            "url": "/api/internal/users/{user_id}/usage",
            "fields": {
                "metric": {"metric": "resumes", "delta": 1},
                "delta": {"metric": "resumes", "delta": 1},
            },
        },
    }


def with_value(body: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    """Return a copy of `body` with the dotted `path` set to `value`."""
    result = copy.deepcopy(body)
    *parents, last = path.split(".")
    target = result
    for key in parents:
        target = target.setdefault(key, {})
    target[last] = value
    return result


def snapshot() -> dict[str, list[tuple]]:
    """Every row of every table, as committed: what 'nothing changed' is checked against."""
    db.session.rollback()
    rows = {}
    for table in db.metadata.sorted_tables:
        result = db.session.execute(sa.select(table))
        rows[table.name] = sorted((tuple(map(repr, row)) for row in result), key=repr)
    db.session.rollback()
    return rows


# Refusals the activity log records (a failed login for a known account), by design.
RECORDED_REFUSALS = {"INVALID_CREDENTIALS", "INVALID_PASSWORD", "INVALID_TWO_FACTOR_CODE"}


def unrecorded(rows: dict[str, list[tuple]], response) -> dict[str, list[tuple]]:
    """`rows` without the activity log's when `response` is a refusal the log records."""
    if response.get_json()["code"] not in RECORDED_REFUSALS:
        return rows
    return {name: table for name, table in rows.items() if name != "activity_events"}


@pytest.fixture
def target(app, auth_client, user, plans):
    """A signed-in user with a paid subscription, a second user with 2FA on, and the send()."""
    assert subscribe(auth_client).status_code == 201
    second = UserFactory(email="2fa@example.com")
    second_client = app.test_client()
    second_client.post("/api/auth/login", json={"email": second.email, "password": PASSWORD})
    enabled = second_client.put(
        "/api/account/security", json={"currentPassword": PASSWORD, "twoFactorEnabled": True}
    )
    assert enabled.status_code == 200
    second_client.post("/api/auth/logout")
    user_id, email = user.public_id, user.email

    def send(method: str, url: str, body: Any, raw: bytes | None = None):
        """Send a request as the signed-in user (internal calls carry the service token)."""
        headers = {"Authorization": f"Bearer {TOKEN}"} if "/internal/" in url else {}
        data = raw if raw is not None else json.dumps(body)
        return auth_client.open(
            url.format(user_id=user_id),
            method=method,
            data=data,
            content_type="application/json",
            headers=headers,
        )

    return {"send": send, "email": email, "user_id": user_id, "client": auth_client}


def check_refused(response, label: str) -> None:
    """A refusal is a 4xx with the contract's error envelope."""
    body = response.get_json(silent=True)
    assert 400 <= response.status_code < 500, (label, response.status_code, body)
    assert isinstance(body, dict) and body.get("success") is False, (label, body)
    assert isinstance(body.get("code"), str) and isinstance(body.get("details"), dict), label


KINDS = sorted(VALUES)
ENDPOINT_NAMES = list(endpoints("x@example.com"))


@pytest.mark.parametrize("endpoint", ENDPOINT_NAMES)
def test_hostile_value_in_every_field_is_refused_and_changes_nothing(target, endpoint):
    spec = endpoints(target["email"])[endpoint]
    # One endpoint per test (its fixture is costly); every kind and field inside, labelled.
    for kind in KINDS:
        for field, base in spec["fields"].items():
            label = f"{endpoint}.{field}={kind}"
            before = snapshot()
            body = with_value(base, field, VALUES[kind])
            response = target["send"](spec["method"], spec["url"], body)
            assert response.status_code < 500, (label, response.get_json(silent=True))
            if (endpoint, field, kind) in ACCEPTED_AS_TEXT and response.status_code < 300:
                assert response.get_json()["success"] is True, label
                continue
            check_refused(response, label)
            assert unrecorded(snapshot(), response) == unrecorded(before, response), (
                f"{label} was refused but changed the database"
            )


@pytest.mark.parametrize("endpoint", ENDPOINT_NAMES)
def test_body_over_one_mebibyte_is_payload_too_large(target, endpoint):
    spec = endpoints(target["email"])[endpoint]
    field, base = next(iter(spec["fields"].items()))
    before = snapshot()
    response = target["send"](spec["method"], spec["url"], with_value(base, field, "x" * 2**20))
    check_refused(response, endpoint)
    assert response.status_code == 413
    assert snapshot() == before


@pytest.mark.parametrize("endpoint", ENDPOINT_NAMES)
def test_body_nested_beyond_the_parser_is_invalid_json(target, endpoint):
    spec = endpoints(target["email"])[endpoint]
    before = snapshot()
    raw = b'{"a":' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    response = target["send"](spec["method"], spec["url"], None, raw=raw)
    check_refused(response, endpoint)
    assert response.json["code"] == "INVALID_JSON"
    assert snapshot() == before


@pytest.mark.parametrize(
    "user_id", ["' OR 1=1 --", "..%2F..%2Fetc%2Fpasswd", "%24%7Bjndi%3Aldap%3A%2F%2Fx%7D", "1"]
)
def test_hostile_user_id_in_the_internal_path_changes_nothing(target, user_id):
    before = snapshot()
    response = target["send"](
        "POST", f"/api/internal/users/{user_id}/usage", {"metric": "resumes", "delta": 1}
    )
    check_refused(response, user_id)
    assert response.status_code == 404
    assert snapshot() == before


@pytest.mark.parametrize("signature", ["t=1,v1=\u00e9\u00e9", "t=\uff11,v1=ab", "v1=' OR 1=1 --"])
def test_hostile_webhook_signature_is_invalid_signature(target, signature):
    before = snapshot()
    response = target["client"].post(
        "/api/webhooks/stripe",
        data=b'{"id": "evt_x"}',
        content_type="application/json",
        headers={"Stripe-Signature": signature},
    )
    check_refused(response, signature)
    assert response.json["code"] == "INVALID_SIGNATURE"
    assert snapshot() == before


# --- unicode confusables ---------------------------------------------------------------------


def test_cyrillic_lookalike_email_is_another_account(client, user, assert_error):
    latin = user.email
    lookalike = "\u0430" + latin[1:] if latin[0] == "a" else latin.replace("e", "\u0435", 1)
    assert lookalike != latin
    created = client.post(
        "/api/auth/register", json={"email": lookalike, "password": STRONG, "name": "Twin"}
    )
    assert created.status_code == 201
    assert created.json["data"]["email"] == lookalike
    # Neither address opens the other's account.
    fresh = client.application.test_client()
    refused = fresh.post("/api/auth/login", json={"email": latin, "password": STRONG})
    assert_error(refused, 401, "INVALID_CREDENTIALS")
    refused = fresh.post("/api/auth/login", json={"email": lookalike, "password": PASSWORD})
    assert_error(refused, 401, "INVALID_CREDENTIALS")


def test_full_width_digits_of_the_right_totp_code_are_refused(client, user, assert_error):
    signed_in = client.application.test_client()
    signed_in.post("/api/auth/login", json={"email": user.email, "password": PASSWORD})
    secret = signed_in.put(
        "/api/account/security", json={"currentPassword": PASSWORD, "twoFactorEnabled": True}
    ).json["data"]["secret"]
    code = pyotp.TOTP(secret).now()
    full_width = "".join(chr(ord(digit) + 0xFF10 - 0x30) for digit in code)
    login = {"email": user.email, "password": PASSWORD}
    refused = client.post("/api/auth/login", json={**login, "twoFactorCode": full_width})
    assert_error(refused, 401, "INVALID_TWO_FACTOR_CODE", field="twoFactorCode")
    # The refusal consumed nothing: the ASCII code still works.
    assert client.post("/api/auth/login", json={**login, "twoFactorCode": code}).status_code == 200


def test_full_width_backup_code_is_refused(client, user, assert_error):
    signed_in = client.application.test_client()
    signed_in.post("/api/auth/login", json={"email": user.email, "password": PASSWORD})
    codes = signed_in.put(
        "/api/account/security", json={"currentPassword": PASSWORD, "twoFactorEnabled": True}
    ).json["data"]["backupCodes"]
    full_width = "".join(chr(ord(digit) + 0xFF10 - 0x30) for digit in codes[0])
    refused = client.post(
        "/api/auth/login",
        json={"email": user.email, "password": PASSWORD, "twoFactorCode": full_width},
    )
    assert_error(refused, 401, "INVALID_TWO_FACTOR_CODE")


# --- text that is accepted verbatim ----------------------------------------------------------


@pytest.mark.parametrize("name", [VALUES["html"], VALUES["sql"], RTL_OVERRIDE, VALUES["crlf"]])
def test_name_is_plain_text_stored_verbatim_and_json_encoded(auth_client, name):
    response = auth_client.put("/api/account", json={"name": name})
    assert response.status_code == 200
    assert auth_client.get("/api/account").json["data"]["name"] == name.strip()
    assert response.mimetype == "application/json"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    # Control and bidi characters travel as JSON escapes, never raw in the body.
    assert "\r" not in response.get_data(as_text=True)
    assert "\u202e" not in response.get_data(as_text=True)
