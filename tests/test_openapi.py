"""The OpenAPI document: valid 3.1, complete, and built from the views' own schemas."""

from __future__ import annotations

import pytest
from openapi_spec_validator import validate

from smartcv_account.errors import ERRORS
from smartcv_account.openapi import declaration, flask_path, spec_for
from smartcv_account.schemas import account as account_schemas
from smartcv_account.schemas.base import BaseSchema

IGNORED_METHODS = {"HEAD", "OPTIONS"}


@pytest.fixture
def spec(client) -> dict:
    """The document as a client downloads it."""
    response = client.get("/api/openapi.json")
    assert response.status_code == 200
    return response.json


def test_document_is_valid_openapi_3_1(spec):
    assert spec["openapi"].startswith("3.1.")
    validate(spec)


def test_every_route_of_the_app_is_documented(app, spec):
    documented = {(path, method) for path, item in spec["paths"].items() for method in item}
    missing = sorted(
        (flask_path(rule.rule), method.lower())
        for rule in app.url_map.iter_rules()
        if rule.endpoint != "static"
        for method in rule.methods - IGNORED_METHODS
        if (flask_path(rule.rule), method.lower()) not in documented
    )
    assert missing == [], "declare each of these views with @endpoint (smartcv_account/openapi.py)"


def test_every_view_declares_itself(app):
    undeclared = sorted(
        rule.endpoint
        for rule in app.url_map.iter_rules()
        if declaration(app.view_functions[rule.endpoint]) is None
    )
    assert undeclared == []


def _component(spec: dict, schema: dict) -> dict:
    """Follow a `$ref` to the component it names."""
    return spec["components"]["schemas"][schema["$ref"].rsplit("/", 1)[-1]]


def test_each_documented_body_is_the_schema_its_view_loads(
    app, spec, auth_client, plans, monkeypatch
):
    """Send `{}` to every operation with a body; the schema that loads it is the documented one."""
    loaded: list[BaseSchema] = []
    real = BaseSchema.load

    def spy(self, data, *args, **kwargs):
        loaded.append(self)
        return real(self, data, *args, **kwargs)

    monkeypatch.setattr(BaseSchema, "load", spy)
    checked = 0
    for rule in app.url_map.iter_rules():
        operation = declaration(app.view_functions[rule.endpoint])
        for method in rule.methods - IGNORED_METHODS:
            documented = spec["paths"][flask_path(rule.rule)][method.lower()]
            if "requestBody" not in documented:
                assert operation.body is None, rule
                continue
            url = rule.rule.replace("<user_id>", "user_unknown")
            loaded.clear()
            auth_client.open(
                url, method=method, json={}, headers={"Authorization": "Bearer test-internal-token"}
            )
            assert loaded and loaded[0] is operation.body, (rule.rule, method)
            component = _component(
                spec, documented["requestBody"]["content"]["application/json"]["schema"]
            )
            names = {field.data_key or name for name, field in operation.body.load_fields.items()}
            assert set(component["properties"]) == names, (rule.rule, method)
            checked += 1
    assert checked >= 7


def test_every_documented_operation_is_a_route(app, spec):
    routes = {
        (flask_path(rule.rule), method.lower())
        for rule in app.url_map.iter_rules()
        for method in rule.methods
    }
    documented = {
        (path, method)
        for path, item in spec["paths"].items()
        for method in item
        if method != "parameters"
    }
    assert documented - routes == set()


def test_request_bodies_come_from_the_views_schemas(spec):
    body = spec["paths"]["/api/auth/register"]["post"]["requestBody"]
    ref = body["content"]["application/json"]["schema"]["$ref"]
    register = spec["components"]["schemas"][ref.rsplit("/", 1)[-1]]
    assert set(register["properties"]) == {
        field.data_key or name for name, field in account_schemas.register_schema.fields.items()
    }
    assert register["additionalProperties"] is False  # unknown fields are rejected
    assert register["properties"]["password"]["writeOnly"] is True


def test_success_responses_are_wrapped_in_the_envelope(spec):
    schema = spec["paths"]["/api/account"]["get"]["responses"]["200"]["content"][
        "application/json"
    ]["schema"]
    assert schema["properties"]["success"] == {"const": True}
    assert schema["properties"]["data"] == {"$ref": "#/components/schemas/Account"}


def test_error_envelope_lists_every_contract_code(spec):
    envelope = spec["components"]["schemas"]["ErrorEnvelope"]
    assert envelope["properties"]["code"]["enum"] == list(ERRORS)
    assert envelope["required"] == ["success", "error", "code", "details"]


def test_each_listed_error_status_is_documented(spec):
    responses = spec["paths"]["/api/auth/login"]["post"]["responses"]
    for status in ("400", "401", "413", "415", "429", "500", "503"):
        assert responses[status]["content"]["application/json"]["schema"] == {
            "$ref": "#/components/schemas/ErrorEnvelope"
        }
    assert "Retry-After" in responses["429"]["headers"]


def test_session_and_internal_security_schemes(spec):
    schemes = spec["components"]["securitySchemes"]
    assert schemes["session"] == {"type": "apiKey", "in": "cookie", "name": "smartcv_session"}
    assert schemes["internal"]["scheme"] == "bearer"
    assert spec["paths"]["/api/account"]["get"]["security"] == [{"session": []}]
    assert "security" not in spec["paths"]["/api/auth/login"]["post"]


def test_every_operation_has_a_unique_id(spec):
    ids = [
        operation["operationId"]
        for item in spec["paths"].values()
        for method, operation in item.items()
        if method != "parameters"
    ]
    assert len(ids) == len(set(ids))


def test_an_undeclared_error_code_fails_at_declaration():
    from smartcv_account.openapi import endpoint

    with pytest.raises(KeyError):
        endpoint(errors=("NO_SUCH_CODE",))


def test_document_is_built_once_per_app(app):
    assert spec_for(app) is spec_for(app)


def test_path_parameters_are_declared(app):
    assert (
        flask_path("/api/internal/users/<user_id>/usage") == "/api/internal/users/{user_id}/usage"
    )
    assert flask_path("/x/<int:n>/<path:rest>") == "/x/{n}/{rest}"
