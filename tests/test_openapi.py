"""The OpenAPI document: valid 3.1, complete, and built from the views' own schemas."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import typing
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator
from marshmallow import fields
from openapi_spec_validator import validate

from smartcv_account.error_codes import ERRORS
from smartcv_account.openapi import declaration, flask_path, spec_for
from smartcv_account.schemas import account as account_schemas
from smartcv_account.schemas import invoices as invoice_schemas
from smartcv_account.schemas import lifecycle as lifecycle_schemas
from smartcv_account.schemas import subscription as subscription_schemas
from smartcv_account.schemas.base import BaseSchema

ROOT = Path(__file__).resolve().parents[1]
IGNORED_METHODS = {"HEAD", "OPTIONS"}
# Redocly's linter, pinned; `npx` fetches it from the npm registry the first time.
REDOCLY = "@redocly/cli@2.77.0"


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
    assert schema["properties"]["success"]["const"] is True
    assert schema["properties"]["data"]["$ref"] == "#/components/schemas/Account"


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
    assert spec["paths"]["/api/auth/login"]["post"]["security"] == []


def test_public_operations_say_they_need_no_credentials(app, spec):
    public = [
        (flask_path(rule.rule), method.lower())
        for rule in app.url_map.iter_rules()
        if declaration(app.view_functions[rule.endpoint]).security is None
        for method in rule.methods - IGNORED_METHODS
    ]
    assert len(public) >= 10
    for path, method in public:
        assert spec["paths"][path][method]["security"] == [], (path, method)


def test_the_document_names_its_server_and_licence(spec):
    assert spec["servers"] == [
        {"url": "/", "description": "The service that serves this document."}
    ]
    assert spec["info"]["license"] == {"name": "Proprietary"}


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


# --- The reference: descriptions, enums, examples, required response fields, error details ---


def _operations(spec: dict):
    """Yield (path, method, operation) for every operation of the document."""
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            if method != "parameters":
                yield path, method, operation


def _json_bodies(operation: dict):
    """Yield (where, media type object) for each JSON request and response body."""
    if "requestBody" in operation:
        yield "request", operation["requestBody"]["content"]["application/json"]
    for status, response in operation["responses"].items():
        for media_type, media in response.get("content", {}).items():
            if media_type == "application/json":
                yield status, media


def _validator(spec: dict, schema: dict) -> Draft202012Validator:
    """A JSON Schema validator of `schema` whose `#/components/...` refs resolve in `spec`."""
    return Draft202012Validator({"components": spec["components"], "allOf": [schema]})


def _undescribed(schema, where: str) -> list[str]:
    """Every property under `schema` (nested objects and array items too) without a description."""
    missing: list[str] = []
    if isinstance(schema, dict):
        for name, prop in schema.get("properties", {}).items():
            if not prop.get("description"):
                missing.append(f"{where}.{name}")
            missing += _undescribed(prop, f"{where}.{name}")
        for key in ("items", "additionalProperties"):
            if isinstance(schema.get(key), dict):
                missing += _undescribed(schema[key], f"{where}[]")
        for key in ("anyOf", "oneOf", "allOf"):
            for branch in schema.get(key, []):
                missing += _undescribed(branch, where)
    return missing


def test_every_operation_has_a_summary_and_a_description(spec):
    lacking = [
        (path, method)
        for path, method, operation in _operations(spec)
        if not operation.get("summary") or not operation.get("description")
    ]
    assert lacking == []


def test_every_property_and_parameter_is_described(spec):
    missing: list[str] = []
    for name, schema in spec["components"]["schemas"].items():
        missing += _undescribed(schema, name)
    for path, method, operation in _operations(spec):
        for where, media in _json_bodies(operation):
            missing += _undescribed(media["schema"], f"{method} {path} {where}")
        for parameter in operation.get("parameters", []):
            if not parameter.get("description"):
                missing.append(f"{method} {path} parameter {parameter['name']}")
    assert missing == []


def test_closed_sets_are_enums(spec):
    from smartcv_account.catalogue import PLAN_TYPE_ORDER
    from smartcv_account.models import ACTIVITY_TYPES
    from smartcv_account.payments.base import PRORATION_BEHAVIORS
    from smartcv_account.services.billing import ACTIONS
    from smartcv_account.services.usage import METRICS

    schemas = spec["components"]["schemas"]
    statuses = ["ACTIVE", "TRIALING", "PAST_DUE", "INCOMPLETE", "CANCELED"]
    expected = {
        ("Account", "subscriptionType"): list(PLAN_TYPE_ORDER),
        ("Account", "subscriptionStatus"): statuses,
        ("Subscription", "type"): list(PLAN_TYPE_ORDER),
        ("Subscription", "status"): statuses,
        ("SubscriptionUpdate", "action"): list(ACTIONS),
        ("SubscriptionUpdate", "prorationBehavior"): list(PRORATION_BEHAVIORS),
        ("UsageChange", "metric"): list(METRICS),
        ("Preferences", "theme"): ["light", "dark", "auto"],
        ("Preferences", "language"): ["en", "zh-cn"],
        ("StoredPreferences", "theme"): ["light", "dark", "auto"],
        ("Invoice", "status"): ["paid", "open", "void", "uncollectible"],
        ("ActivityEvent", "type"): list(ACTIVITY_TYPES),
        ("PublicPlan", "type"): list(PLAN_TYPE_ORDER),
    }
    for (component, prop), values in expected.items():
        assert schemas[component]["properties"][prop]["enum"] == values, (component, prop)
    metric = schemas["ErrorEnvelope"]["properties"]["details"]["properties"]["metric"]
    assert metric["$ref"] == "#/components/schemas/UsageMetric"
    assert schemas["UsageMetric"]["enum"] == list(METRICS)


def test_every_body_has_an_example_that_validates(spec):
    checked = 0
    for path, method, operation in _operations(spec):
        for where, media in _json_bodies(operation):
            examples = (
                [media["example"]]
                if "example" in media
                else [example["value"] for example in media.get("examples", {}).values()]
            )
            assert examples, (method, path, where)
            validator = _validator(spec, media["schema"])
            for example in examples:
                errors = [error.message for error in validator.iter_errors(example)]
                assert errors == [], (method, path, where, example)
                checked += 1
    assert checked > 100


def test_each_error_answer_has_an_example_per_code(spec):
    responses = spec["paths"]["/api/account/subscription"]["post"]["responses"]
    examples = responses["402"]["content"]["application/json"]["examples"]
    assert examples["PAYMENT_FAILED"]["value"]["details"]["declineCode"]
    examples = spec["paths"]["/api/auth/register"]["post"]["responses"]["400"]["content"][
        "application/json"
    ]["examples"]
    assert set(examples["VALIDATION_ERROR"]["value"]["details"]) == {"field", "fields"}


def test_error_details_are_documented_per_code(spec):
    details = spec["components"]["schemas"]["ErrorEnvelope"]["properties"]["details"]
    for code, error in ERRORS.items():
        for key in error.details:
            assert code in details["properties"][key]["description"], (code, key)
        if error.details:
            listed = ", ".join(f"`{key}`" for key in error.details)
            assert f"- {code}: {listed}" in details["description"], code
    for key in ("declineCode", "feedback", "metric", "limit", "used", "retryAfter", "reason"):
        assert key in details["properties"], key
    assert details["properties"]["feedback"]["required"] == ["warning", "suggestions", "score"]
    assert all("example" not in schema for schema in details["properties"].values())


def test_each_error_example_is_the_one_of_its_code(spec):
    for path, method, operation in _operations(spec):
        for status, response in operation["responses"].items():
            if int(status) < 400:
                continue
            examples = response["content"]["application/json"]["examples"]
            for code, example in examples.items():
                assert ERRORS[code].status == int(status), (path, method, code)
                assert example["value"] == ERRORS[code].example_answer(code)


def _data_component(spec: dict, path: str, method: str, status: str = "200") -> dict:
    """The component a success answer's `data` refers to."""
    schema = spec["paths"][path][method]["responses"][status]["content"]["application/json"][
        "schema"
    ]
    data = schema["properties"]["data"]
    data = data.get("items", data)
    return _component(spec, data)


def test_response_schemas_list_their_required_fields(spec):
    account = _data_component(spec, "/api/account", "get")
    assert set(account["required"]) == set(account["properties"])
    subscription = _data_component(spec, "/api/account/subscription", "get")
    assert set(subscription["required"]) == set(subscription["properties"])
    for path, method in (
        ("/api/plans", "get"),
        ("/api/account/invoices", "get"),
        ("/api/account/sessions", "get"),
        ("/api/account/activity", "get"),
        ("/api/account/export", "get"),
        ("/api/account/subscription/preview", "get"),
    ):
        component = _data_component(spec, path, method)
        assert component["required"] == list(component["properties"]), path
    security = _data_component(spec, "/api/account/security", "put")
    assert security["required"] == ["passwordUpdated", "twoFactorEnabled"]
    assert "x-omittedWhen" in security["properties"]["backupCodes"]
    # A schema requests also use keeps its optional fields optional.
    assert "required" not in spec["components"]["schemas"]["Preferences"]


def test_real_answers_match_the_documented_schemas(spec, auth_client, plans):
    """What the service really answers validates against what the reference promises."""
    from tests.billing_helpers import subscribe

    assert subscribe(auth_client).status_code == 201
    checked = []
    for path in (
        "/api/account",
        "/api/account/subscription",
        "/api/plans",
        "/api/account/invoices",
        "/api/account/sessions",
        "/api/account/activity",
        "/api/account/export",
        "/api/account/subscription/preview?action=upgrade&planId=plan_premium_yearly",
    ):
        response = auth_client.get(path)
        assert response.status_code == 200, (path, response.json)
        schema = spec["paths"][path.partition("?")[0]]["get"]["responses"]["200"]["content"][
            "application/json"
        ]["schema"]
        errors = [error.message for error in _validator(spec, schema).iter_errors(response.json)]
        assert errors == [], path
        checked.append(path)
    assert len(checked) == 8


def test_idempotency_key_is_documented_where_it_is_honoured(app, spec):
    from smartcv_account.openapi import honours_idempotency_key

    honoured = set()
    for rule in app.url_map.iter_rules():
        view = app.view_functions[rule.endpoint]
        for method in rule.methods - IGNORED_METHODS:
            operation = spec["paths"][flask_path(rule.rule)][method.lower()]
            names = {parameter["name"] for parameter in operation.get("parameters", [])}
            success = next(iter(operation["responses"].values()))
            if honours_idempotency_key(view):
                honoured.add((flask_path(rule.rule), method.lower()))
                assert "Idempotency-Key" in names
                assert "Idempotent-Replayed" in success["headers"]
                assert {"409", "422"} <= set(operation["responses"])
            else:
                assert "Idempotency-Key" not in names, rule.rule
    assert {
        ("/api/account/subscription", "post"),
        ("/api/account/subscription", "put"),
        ("/api/internal/users/{user_id}/usage", "post"),
        ("/api/account/email", "post"),
        ("/api/account", "delete"),
    } <= honoured


def test_reference_page_and_its_assets_are_served_here(client):
    with client.get("/api/docs") as page:
        assert page.status_code == 200 and page.mimetype == "text/html"
        html = page.get_data(as_text=True)
    assert "http://" not in html and "https://" not in html  # every asset is relative
    policy = page.headers["Content-Security-Policy"]
    assert "script-src 'self';" in policy and "default-src 'none'" in policy
    assert "unsafe" not in policy and "http" not in policy
    for asset, mimetype in (
        ("swagger-ui.css", "text/css"),
        ("swagger-ui-bundle.js", "text/javascript"),
        ("reference.js", "text/javascript"),
    ):
        assert f"docs/{asset}" in html
        with client.get(f"/api/docs/{asset}") as response:
            assert response.status_code == 200 and response.mimetype == mimetype, asset
            assert response.headers["Content-Security-Policy"] == policy
    # The JSON API keeps its stricter policy.
    assert client.get("/api/openapi.json").headers["Content-Security-Policy"] == (
        "default-src 'none'; frame-ancestors 'none'"
    )
    assert client.get("/api/docs/app.py").status_code == 404


def _conforms(spec: dict, path: str, method: str, response) -> list[str]:
    """The ways `response` departs from what the document promises for it."""
    documented = spec["paths"][path][method]["responses"].get(str(response.status_code))
    if documented is None:
        return [f"{method} {path}: status {response.status_code} is not documented"]
    schema = documented["content"]["application/json"]["schema"]
    return [error.message for error in _validator(spec, schema).iter_errors(response.json)]


def test_real_changes_and_refusals_match_the_documented_schemas(spec, app, plans, frozen_clock):
    """Writes and error answers as the service gives them validate against the reference."""
    from tests.billing_helpers import change, subscribe

    client = app.test_client()
    password = "correct horse battery staple 42"
    answers = [
        (
            "/api/auth/register",
            "post",
            client.post(
                "/api/auth/register",
                json={"email": "ref@example.com", "password": password, "name": "Ref"},
            ),
        ),
        ("/api/account", "put", client.put("/api/account", json={"name": "Ref Two"})),
        (
            "/api/account/security",
            "put",
            client.put(
                "/api/account/security",
                json={"currentPassword": password, "twoFactorEnabled": True},
            ),
        ),
        (
            "/api/account/security",
            "put",
            client.put("/api/account/security", json={"currentPassword": password}),
        ),
        ("/api/account/subscription", "post", subscribe(client)),
        (
            "/api/account/subscription",
            "put",
            change(client, "upgrade", planId="plan_premium_yearly"),
        ),
        ("/api/account/subscription", "put", change(client, "cancel")),
        ("/api/account/subscription", "put", change(client, "reactivate")),
        ("/api/account/subscription", "post", subscribe(client)),  # 409, already subscribed
        ("/api/account", "put", client.put("/api/account", json={"name": ""})),  # 400
        ("/api/account/sessions", "delete", client.delete("/api/account/sessions")),
        (
            "/api/internal/users/{user_id}/usage",
            "post",
            client.post(
                f"/api/internal/users/{client.get('/api/account').json['data']['id']}/usage",
                json={"metric": "resumes", "delta": 1},
                headers={"Authorization": "Bearer test-internal-token"},
            ),
        ),
        ("/api/auth/logout", "post", client.post("/api/auth/logout")),
        ("/api/account", "get", client.get("/api/account")),  # 401
    ]
    statuses = [response.status_code for _, _, response in answers]
    assert statuses == [201, 200, 200, 200, 201, 200, 200, 200, 409, 400, 200, 200, 200, 401]
    for path, method, response in answers:
        assert _conforms(spec, path, method, response) == [], (path, method, response.json)


# --- what other tools read: nullability, patterns, links, lint ---------------------------------


def _nullable(schema: dict) -> bool:
    """Whether a property's schema admits null."""
    kind = schema.get("type")
    if isinstance(kind, list) and "null" in kind:
        return True
    return any(branch.get("type") == "null" for branch in schema.get("anyOf", []))


def _may_be_none(source: type, attribute: str) -> bool | None:
    """Whether `source` (a model or a dataclass) lets `attribute` be None; None if it has none."""
    table = getattr(source, "__table__", None)
    if table is not None:
        column = table.columns.get(attribute)
        return None if column is None else column.nullable
    hint = typing.get_type_hints(source).get(attribute)
    return None if hint is None else type(None) in typing.get_args(hint)


def _returned(function) -> type:
    """The type a service function returns (the element type of a list)."""
    returned = typing.get_type_hints(function)["return"]
    if typing.get_origin(returned) is list:
        return typing.get_args(returned)[0]
    return next((arg for arg in typing.get_args(returned) if arg is not type(None)), returned)


def test_response_fields_admit_null_only_where_their_source_may_be_none(spec):
    from smartcv_account.models import ActivityEvent, Subscription
    from smartcv_account.services import accounts, billing, lifecycle, plans

    sources = {
        account_schemas.AccountSchema: _returned(accounts.account_view),
        subscription_schemas.SubscriptionSchema: _returned(billing.subscription_view),
        subscription_schemas.SubscriptionCreatedSchema: _returned(billing.create_subscription),
        subscription_schemas.SubscriptionChangedSchema: _returned(billing.change_subscription),
        invoice_schemas.InvoiceSchema: _returned(billing.list_invoices),
        subscription_schemas.PlanSchema: _returned(plans.plan_for_display),
        lifecycle_schemas.SessionRecordSchema: _returned(lifecycle.list_sessions),
        lifecycle_schemas.SubscriptionRecordSchema: Subscription,
        lifecycle_schemas.ActivityEventSchema: ActivityEvent,
    }
    scalar = (fields.String, fields.Number, fields.Boolean, fields.DateTime, fields.Dict)
    checked = []
    for schema_class, source in sources.items():
        component = spec["components"]["schemas"][schema_class.__name__.removesuffix("Schema")]
        for name, field in schema_class().dump_fields.items():
            may_be_none = _may_be_none(source, field.attribute or name)
            if not isinstance(field, scalar) or may_be_none is None:
                continue
            documented = _nullable(component["properties"][field.data_key or name])
            assert documented == may_be_none, (schema_class.__name__, name, source)
            checked.append(name)
    assert len(checked) > 60
    assert "createdAt" not in [
        key
        for key, value in spec["components"]["schemas"]["Account"]["properties"].items()
        if _nullable(value)
    ]


def _patterns(schema) -> list[str]:
    """Every `pattern` in a part of the document."""
    if isinstance(schema, dict):
        found = [schema["pattern"]] if isinstance(schema.get("pattern"), str) else []
        return found + [pattern for value in schema.values() for pattern in _patterns(value)]
    if isinstance(schema, list):
        return [pattern for value in schema for pattern in _patterns(value)]
    return []


# Python-only regular expression syntax: \A \Z, named groups (?P…), lookbehind, atomic groups,
# possessive quantifiers and inline flags.
PYTHON_ONLY = re.compile(r"\\[AZ]|\(\?P|\(\?<[=!]|\(\?>|[*+?}]\+|\(\?[aiLmsux]+[):]")


def test_patterns_are_javascript_ones(spec):
    patterns = _patterns(spec)
    assert len(patterns) >= 3
    assert [pattern for pattern in patterns if PYTHON_ONLY.search(pattern)] == []
    if shutil.which("node") is None:
        return
    script = "for (const p of JSON.parse(process.argv[1])) new RegExp(p, 'u');"
    result = subprocess.run(
        ["node", "-e", script, json.dumps(sorted(set(patterns)))],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 0, result.stderr


def _links(spec: dict) -> set[tuple[str, str]]:
    """(source operation id, target operation id) of every link of the document."""
    return {
        (operation["operationId"], link["operationId"])
        for _, _, operation in _operations(spec)
        for response in operation["responses"].values()
        for link in response.get("links", {}).values()
    }


def test_the_main_chains_are_linked(spec):
    assert {
        ("register", "getAccount"),
        ("getAccount", "updateAccount"),
        ("createSubscription", "getSubscription"),
        ("getSubscription", "updateSubscription"),
        ("listSessions", "revokeSession"),
    } <= _links(spec)


def test_each_link_sets_parameters_its_target_has(spec):
    by_id = {
        operation["operationId"]: (path, operation) for path, _, operation in _operations(spec)
    }
    for _, _, operation in _operations(spec):
        for response in operation["responses"].values():
            for link in response.get("links", {}).values():
                path, target = by_id[link["operationId"]]
                names = {
                    f"{parameter['in']}.{parameter['name']}"
                    for parameter in [
                        *spec["paths"][path].get("parameters", []),
                        *target.get("parameters", []),
                    ]
                }
                assert set(link.get("parameters", {})) <= names, link
                if "requestBody" in link:
                    body = _component(
                        spec, target["requestBody"]["content"]["application/json"]["schema"]
                    )
                    assert set(link["requestBody"]) <= set(body["properties"]), link


def test_a_link_to_an_unknown_operation_fails_the_document(app_factory):
    from smartcv_account.openapi import Link, endpoint

    app = app_factory()

    @app.get("/api/linked")
    @endpoint(None, security=None, links=(Link("no_such_view", "Nowhere."),))
    def linked():
        """Link nowhere.

        A route of this test only.
        """

    with pytest.raises(LookupError, match="noSuchView"):
        spec_for(app)


def test_cross_site_navigation_refusal_is_documented_where_it_happens(spec, auth_client):
    """A page load started on another site is refused (403) exactly where the document says."""
    navigation = {"Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "navigate"}
    checked = 0
    for path, method, operation in _operations(spec):
        if method != "get" or "{" in path:
            continue
        with auth_client.get(path, headers=navigation) as response:
            refused = response.status_code == 403
        assert refused == ("403" in operation["responses"]), path
        checked += 1
    assert checked >= 10


def test_a_view_without_response_data_must_return_none():
    from smartcv_account.openapi.endpoint import Operation, body_of

    assert body_of(Operation(None), None) == {"success": True}
    with pytest.raises(TypeError, match="declares no response data"):
        body_of(Operation(None), {"surprise": True})


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("npx") is None, reason="Redocly's linter runs under Node (npx)")
def test_redocly_lint_with_the_recommended_rules_is_clean(spec, tmp_path):
    """Redocly's recommended rules pass, but for the exceptions redocly.yaml explains."""
    document = tmp_path / "openapi.json"
    document.write_text(json.dumps(spec))
    result = subprocess.run(
        ["npx", "--yes", REDOCLY, "lint", "--config", str(ROOT / "redocly.yaml"), str(document)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-6000:]
    assert "Your API description is valid" in output, output[-6000:]
    assert "warning" not in output.lower().replace("deprecation warning", ""), output[-6000:]
