"""The error envelope: every failure, from routing to an unexpected exception, answers JSON."""

from __future__ import annotations

import json
import logging

import pytest

from .factories import PASSWORD

MIB = 1024 * 1024
PROTECTED = [
    ("get", "/api/account"),
    ("put", "/api/account"),
    ("put", "/api/account/security"),
]


def deeply_nested(depth: int) -> str:
    """A JSON object whose `name` holds `depth` nested arrays."""
    return '{"name": ' + "[" * depth + "]" * depth + "}"


# --- routing ----------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/nope", "/api/nope", "/api/account/nope", "/api/auth/"])
def test_unknown_route_is_not_found(client, path, assert_error):
    response = client.get(path)
    assert_error(response, 404, "NOT_FOUND")
    assert response.mimetype == "application/json"


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("patch", "/api/account"),
        ("post", "/api/account"),
        ("get", "/api/auth/login"),
        ("get", "/api/auth/register"),
        ("get", "/api/auth/logout"),
        ("get", "/api/account/security"),
    ],
)
def test_wrong_method_is_method_not_allowed(client, method, path, assert_error):
    response = getattr(client, method)(path)
    assert_error(response, 405, "METHOD_NOT_ALLOWED")
    assert response.headers["Allow"]


def test_method_not_allowed_names_the_allowed_methods(client):
    allowed = client.patch("/api/account").headers["Allow"].split(", ")
    assert {"GET", "PUT"} <= set(allowed)


# --- bodies -----------------------------------------------------------------------------------


def test_body_over_1_mib_is_payload_too_large(auth_client, assert_error):
    body = json.dumps({"name": "x" * MIB})
    response = auth_client.put("/api/account", data=body, content_type="application/json")
    assert_error(response, 413, "PAYLOAD_TOO_LARGE")


def test_body_over_1_mib_on_login_is_payload_too_large(client, assert_error):
    body = json.dumps({"email": "a@example.com", "password": "x" * MIB})
    response = client.post("/api/auth/login", data=body, content_type="application/json")
    assert_error(response, 413, "PAYLOAD_TOO_LARGE")


def test_body_of_exactly_1_mib_is_read(auth_client, assert_error):
    padding = MIB - len(json.dumps({"name": ""}))
    body = json.dumps({"name": "x" * padding})
    assert len(body) == MIB
    response = auth_client.put("/api/account", data=body, content_type="application/json")
    assert_error(response, 400, "VALIDATION_ERROR", field="name")


@pytest.mark.parametrize(
    "content_type", ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data"]
)
def test_non_json_content_type_on_put_is_unsupported_media_type(
    auth_client, content_type, assert_error
):
    response = auth_client.put("/api/account", data='{"name": "x"}', content_type=content_type)
    assert_error(response, 415, "UNSUPPORTED_MEDIA_TYPE")


def test_non_json_content_type_on_post_is_unsupported_media_type(client, user, assert_error):
    response = client.post(
        "/api/auth/login",
        data=f"email={user.email}&password={PASSWORD}",
        content_type="application/x-www-form-urlencoded",
    )
    assert_error(response, 415, "UNSUPPORTED_MEDIA_TYPE")


def test_post_without_body_or_content_type_to_login_is_unsupported_media_type(client, assert_error):
    assert_error(client.post("/api/auth/login"), 415, "UNSUPPORTED_MEDIA_TYPE")


def test_json_content_type_with_charset_is_accepted(auth_client):
    response = auth_client.put(
        "/api/account", data='{"name": "Li Si"}', content_type="application/json; charset=utf-8"
    )
    assert response.status_code == 200


@pytest.mark.parametrize("body", ['{"name": ', "{name: 'x'}", "{'name': 'x'}", "nul", "\xff"])
def test_malformed_json_is_invalid_json(auth_client, body, assert_error):
    response = auth_client.put("/api/account", data=body, content_type="application/json")
    assert_error(response, 400, "INVALID_JSON")


def test_empty_json_body_is_invalid_json(client, assert_error):
    response = client.post("/api/auth/login", data="", content_type="application/json")
    assert_error(response, 400, "INVALID_JSON")


@pytest.mark.parametrize("body", ["[]", '[{"name": "x"}]', '"name"', "42", "null", "true"])
def test_json_body_that_is_not_an_object_is_a_validation_error(auth_client, body, assert_error):
    response = auth_client.put("/api/account", data=body, content_type="application/json")
    error = assert_error(response, 400, "VALIDATION_ERROR")
    assert error["details"]["fields"]


def test_missing_required_field_is_a_validation_error(client, assert_error):
    response = client.post("/api/auth/login", json={"email": "a@example.com"})
    error = assert_error(response, 400, "VALIDATION_ERROR", field="password")
    assert error["details"]["fields"]["password"]


def test_validation_error_names_the_first_field_of_its_field_map(auth_client, assert_error):
    response = auth_client.put("/api/account", json={"preferences": {"theme": "blue"}})
    error = assert_error(response, 400, "VALIDATION_ERROR", field="preferences.theme")
    assert list(error["details"]["fields"]) == ["preferences.theme"]


def test_deeply_nested_json_in_a_field_is_invalid_json(auth_client, assert_error):
    response = auth_client.put(
        "/api/account", data=deeply_nested(100_000), content_type="application/json"
    )
    assert_error(response, 400, "INVALID_JSON")


def test_moderately_nested_json_in_a_field_is_a_validation_error(auth_client, assert_error):
    response = auth_client.put(
        "/api/account", data=deeply_nested(500), content_type="application/json"
    )
    assert_error(response, 400, "VALIDATION_ERROR", field="name")


@pytest.mark.parametrize("path", ["/api/auth/login", "/api/auth/register"])
def test_deeply_nested_json_is_refused_while_rate_limits_are_on(app_factory, path, assert_error):
    # The per-email limit reads the body before the view does; it must not choke on it either.
    client = app_factory(RATELIMIT_ENABLED=True).test_client()
    body = '{"email": ' + "[" * 100_000 + "]" * 100_000 + ', "password": "x", "name": "x"}'
    response = client.post(path, data=body, content_type="application/json")
    assert_error(response, 400, "INVALID_JSON")


def test_nul_character_in_a_nested_key_is_a_validation_error(auth_client, assert_error):
    response = auth_client.put("/api/account", json={"preferences": {"the\x00me": "dark"}})
    assert_error(response, 400, "VALIDATION_ERROR", field="preferences.the\x00me")


# --- authentication ---------------------------------------------------------------------------


@pytest.mark.parametrize(("method", "path"), PROTECTED)
def test_protected_endpoint_without_a_session_is_unauthorized(client, method, path, assert_error):
    response = getattr(client, method)(path, json={"currentPassword": PASSWORD})
    assert_error(response, 401, "UNAUTHORIZED")


@pytest.mark.parametrize(("method", "path"), PROTECTED)
def test_protected_endpoint_with_a_garbage_cookie_is_unauthorized(
    client, method, path, assert_error
):
    client.set_cookie("smartcv_session", "not-a-signed-session")
    response = getattr(client, method)(path, json={"currentPassword": PASSWORD})
    assert_error(response, 401, "UNAUTHORIZED")


# --- unexpected failures ----------------------------------------------------------------------


@pytest.fixture
def exploding_client(app_factory):
    """A client of an app with a throwaway route that fails with an unexpected exception."""
    exploding = app_factory()

    @exploding.post("/boom")
    def boom():
        raise RuntimeError("database password is hunter2")

    return exploding.test_client()


def test_unexpected_exception_is_internal_error(exploding_client, assert_error):
    response = exploding_client.post("/boom", json={})
    assert_error(response, 500, "INTERNAL_ERROR")
    assert response.mimetype == "application/json"


def test_internal_error_leaks_no_traceback_or_message(exploding_client):
    text = exploding_client.post("/boom", json={}).get_data(as_text=True)
    assert "Traceback" not in text
    assert "hunter2" not in text
    assert "RuntimeError" not in text


def test_unexpected_exception_is_logged(exploding_client, caplog):
    with caplog.at_level(logging.ERROR, logger="smartcv_account.errors"):
        exploding_client.post("/boom", json={})
    assert any(record.exc_info for record in caplog.records)


def test_an_error_takes_its_status_from_the_one_table():
    from smartcv_account.errors import ERRORS, ApiError

    for code, status in ERRORS.items():
        assert ApiError(code, "message").status == status


def test_an_error_names_its_code_only():
    from smartcv_account.errors import ApiError

    with pytest.raises(TypeError):
        ApiError("NOT_FOUND", "message", 404)
    with pytest.raises(KeyError):
        ApiError("NO_SUCH_CODE", "message")
