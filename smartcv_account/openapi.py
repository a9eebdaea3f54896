"""The OpenAPI 3.1 document, generated from the marshmallow schemas the views use.

Each endpoint is one `Operation` in `OPERATIONS`: its path, method, request schema, response
schema and the contract error codes it can answer with. `build_spec` turns the list into the
document: the success envelope around the response schema, the error envelope for each error
status, the security scheme, and the error statuses every endpoint of a kind can produce
(415/413/400 for a body, 401 for a session, 500/503 for all). To document a new endpoint, add an
entry; `tests/test_openapi.py` fails for any route that has none.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin
from flask import Flask
from marshmallow import Schema, fields

from .schemas import account as account_schemas
from .schemas import email as email_schemas
from .schemas import lifecycle as lifecycle_schemas
from .schemas import subscription as subscription_schemas
from .schemas import usage as usage_schemas
from .schemas.base import Money, Timestamp

OPENAPI_VERSION = "3.1.0"
API_VERSION = "0.1.0"
EXTENSION_KEY = "smartcv_openapi"

# The contract's error codes and their HTTP status (shared/API.md, "Error codes").
ERROR_CODES: dict[str, int] = {
    "USER_NOT_FOUND": 404,
    "INVALID_PASSWORD": 400,
    "WEAK_PASSWORD": 422,
    "SUBSCRIPTION_NOT_FOUND": 404,
    "PAYMENT_FAILED": 402,
    "PLAN_NOT_FOUND": 404,
    "SUBSCRIPTION_LIMIT_EXCEEDED": 429,
    "VALIDATION_ERROR": 400,
    "INVALID_JSON": 400,
    "UNAUTHORIZED": 401,
    "INVALID_CREDENTIALS": 401,
    "TWO_FACTOR_REQUIRED": 401,
    "INVALID_TWO_FACTOR_CODE": 401,
    "FORBIDDEN": 403,
    "NOT_FOUND": 404,
    "METHOD_NOT_ALLOWED": 405,
    "EMAIL_TAKEN": 409,
    "SUBSCRIPTION_ALREADY_EXISTS": 409,
    "INVALID_PLAN_CHANGE": 409,
    "INVALID_COUPON": 400,
    "PAYLOAD_TOO_LARGE": 413,
    "UNSUPPORTED_MEDIA_TYPE": 415,
    "RATE_LIMITED": 429,
    "INVALID_SIGNATURE": 400,
    "INTERNAL_ERROR": 500,
    "SERVICE_UNAVAILABLE": 503,
    "IDEMPOTENCY_KEY_REUSED": 422,
    "IDEMPOTENCY_KEY_IN_USE": 409,
    "SESSION_NOT_FOUND": 404,
    "INVALID_TOKEN": 400,
    "EMAIL_ALREADY_VERIFIED": 409,
}
# Answers of an operation that honours Idempotency-Key (smartcv_account/idempotency.py).
IDEMPOTENCY_ERRORS = ("IDEMPOTENCY_KEY_REUSED", "IDEMPOTENCY_KEY_IN_USE")

# Codes any endpoint can answer with, by what the endpoint is.
ALWAYS = ("INTERNAL_ERROR", "SERVICE_UNAVAILABLE")
# http.py checks the Content-Type of any body sent with these methods, even where none is read,
# and cors.py the Origin of every request sent with them.
BODY_METHOD_ERRORS = ("UNSUPPORTED_MEDIA_TYPE", "PAYLOAD_TOO_LARGE", "FORBIDDEN")
JSON_BODY_ERRORS = ("INVALID_JSON", "VALIDATION_ERROR")
SECURITY_ERRORS = {"session": ("UNAUTHORIZED",), "internal": ("UNAUTHORIZED", "FORBIDDEN")}

SECURITY_SCHEMES = {
    # The cookie's name comes from SESSION_COOKIE_NAME when the document is built.
    "session": {"type": "apiKey", "in": "cookie", "name": "smartcv_session"},
    "internal": {
        "type": "http",
        "scheme": "bearer",
        "description": "INTERNAL_API_TOKEN, for other SmartCV services only.",
    },
}


@dataclass(frozen=True)
class Operation:
    """One documented endpoint.

    `response` is the schema of the success envelope's `data` (a marshmallow schema, or a raw
    JSON Schema dict), or None when the envelope carries no data. With `envelope=False` the
    response is the body itself (health check, this document).
    """

    path: str
    method: str
    summary: str
    response: Schema | type[Schema] | dict[str, Any] | None
    request: Schema | type[Schema] | None = None
    status: int = 200
    errors: tuple[str, ...] = ()
    security: str | None = "session"
    tag: str = "account"
    envelope: bool = True
    message: bool = False  # the success envelope also carries a `message` string
    operation_id: str | None = None
    many: bool = False  # `data` is a list of `response`
    query: Schema | None = None  # the query string's parameters


OPERATIONS: list[Operation] = [
    Operation(
        "/healthz",
        "get",
        "Report whether the service and its database answer.",
        {
            "type": "object",
            "required": ["status"],
            "properties": {"status": {"const": "ok"}},
        },
        security=None,
        tag="operations",
        envelope=False,
        operation_id="health",
    ),
    Operation(
        "/api/openapi.json",
        "get",
        "Return this OpenAPI document.",
        {"type": "object"},
        security=None,
        tag="operations",
        envelope=False,
        operation_id="openapi",
    ),
    Operation(
        "/api/auth/register",
        "post",
        "Create an account and sign in.",
        account_schemas.account_schema,
        request=account_schemas.register_schema,
        status=201,
        errors=("EMAIL_TAKEN", "WEAK_PASSWORD", "RATE_LIMITED"),
        security=None,
        tag="auth",
        operation_id="register",
    ),
    Operation(
        "/api/auth/login",
        "post",
        "Sign in with email, password and, when enabled, the second factor.",
        account_schemas.account_schema,
        request=account_schemas.login_schema,
        errors=(
            "INVALID_CREDENTIALS",
            "TWO_FACTOR_REQUIRED",
            "INVALID_TWO_FACTOR_CODE",
            "RATE_LIMITED",
        ),
        security=None,
        tag="auth",
        operation_id="login",
    ),
    Operation(
        "/api/auth/logout",
        "post",
        "End this session; the user's other sessions stay.",
        None,
        tag="auth",
        operation_id="logout",
    ),
    Operation(
        "/api/account",
        "get",
        "Return the signed-in user's account.",
        account_schemas.account_schema,
        operation_id="getAccount",
    ),
    Operation(
        "/api/account",
        "put",
        "Update name, avatar and preferences (only the fields sent).",
        account_schemas.account_schema,
        request=account_schemas.account_update_schema,
        operation_id="updateAccount",
    ),
    Operation(
        "/api/account/security",
        "put",
        "Change the password and/or turn two-factor authentication on or off.",
        account_schemas.security_result_schema,
        request=account_schemas.security_update_schema,
        errors=("INVALID_PASSWORD", "WEAK_PASSWORD"),
        message=True,
        operation_id="updateSecurity",
    ),
    Operation(
        "/api/auth/verify-email/request",
        "post",
        "Send a new verification link to the signed-in user's address.",
        None,
        status=202,
        errors=("EMAIL_ALREADY_VERIFIED", "RATE_LIMITED"),
        tag="email",
        operation_id="requestEmailVerification",
    ),
    Operation(
        "/api/auth/verify-email",
        "post",
        "Verify the address a verification link was sent to.",
        account_schemas.account_schema,
        request=email_schemas.token_schema,
        errors=("INVALID_TOKEN",),
        security=None,
        tag="email",
        operation_id="verifyEmail",
    ),
    Operation(
        "/api/auth/password-reset/request",
        "post",
        "Send a password reset link if the address has an account (same answer either way).",
        None,
        request=email_schemas.password_reset_request_schema,
        status=202,
        errors=("RATE_LIMITED",),
        security=None,
        tag="email",
        operation_id="requestPasswordReset",
    ),
    Operation(
        "/api/auth/password-reset",
        "post",
        "Set a new password with a reset link's token; every session ends.",
        None,
        request=email_schemas.password_reset_schema,
        errors=(
            "INVALID_TOKEN",
            "WEAK_PASSWORD",
            "TWO_FACTOR_REQUIRED",
            "INVALID_TWO_FACTOR_CODE",
        ),
        security=None,
        tag="email",
        operation_id="resetPassword",
    ),
    Operation(
        "/api/account/email",
        "post",
        "Ask to move the account to a new address (confirmed by a link sent there).",
        None,
        request=email_schemas.email_change_schema,
        status=202,
        errors=("INVALID_PASSWORD", "EMAIL_TAKEN", "RATE_LIMITED"),
        tag="email",
        operation_id="requestEmailChange",
    ),
    Operation(
        "/api/account/email/confirm",
        "post",
        "Move the account to the address an email-change link was sent to.",
        account_schemas.account_schema,
        request=email_schemas.token_schema,
        errors=("INVALID_TOKEN", "EMAIL_TAKEN"),
        security=None,
        tag="email",
        operation_id="confirmEmailChange",
    ),
    Operation(
        "/api/account/subscription",
        "get",
        "Return the subscription, its plan, usage, card and next bill.",
        subscription_schemas.subscription_schema,
        tag="subscription",
        operation_id="getSubscription",
    ),
    Operation(
        "/api/account/subscription",
        "post",
        "Subscribe to a plan and pay the first invoice.",
        subscription_schemas.subscription_created_schema,
        request=subscription_schemas.subscription_create_schema,
        status=201,
        errors=(
            "PLAN_NOT_FOUND",
            "PAYMENT_FAILED",
            "INVALID_COUPON",
            "SUBSCRIPTION_ALREADY_EXISTS",
            *IDEMPOTENCY_ERRORS,
        ),
        tag="subscription",
        operation_id="createSubscription",
    ),
    Operation(
        "/api/account/subscription",
        "put",
        "Upgrade, downgrade, cancel, reactivate or change the card.",
        subscription_schemas.subscription_changed_schema,
        request=subscription_schemas.subscription_update_schema,
        errors=(
            "SUBSCRIPTION_NOT_FOUND",
            "PLAN_NOT_FOUND",
            "INVALID_PLAN_CHANGE",
            "PAYMENT_FAILED",
            *IDEMPOTENCY_ERRORS,
        ),
        tag="subscription",
        operation_id="updateSubscription",
    ),
    Operation(
        "/api/account/subscription/preview",
        "get",
        "Show what an upgrade or downgrade would bill now and next.",
        subscription_schemas.preview_schema,
        query=subscription_schemas.preview_query_schema,
        errors=(
            "VALIDATION_ERROR",
            "SUBSCRIPTION_NOT_FOUND",
            "PLAN_NOT_FOUND",
            "INVALID_PLAN_CHANGE",
        ),
        tag="subscription",
        operation_id="previewSubscriptionChange",
    ),
    Operation(
        "/api/plans",
        "get",
        "List the free and self-serve plans, cheapest first.",
        subscription_schemas.public_plan_schema,
        many=True,
        security=None,
        tag="subscription",
        operation_id="listPlans",
    ),
    Operation(
        "/api/account/invoices",
        "get",
        "List the user's invoices, newest first.",
        subscription_schemas.invoice_schema,
        many=True,
        tag="subscription",
        operation_id="listInvoices",
    ),
    Operation(
        "/api/webhooks/stripe",
        "post",
        "Verify a signed provider event and bring the subscription in step with it.",
        subscription_schemas.webhook_receipt_schema,
        errors=("INVALID_SIGNATURE", "VALIDATION_ERROR"),
        security=None,
        tag="webhooks",
        operation_id="stripeWebhook",
    ),
    Operation(
        "/api/internal/users/{user_id}/usage",
        "post",
        "Record a usage delta for a user (other SmartCV services only).",
        usage_schemas.usage_schema,
        request=usage_schemas.usage_change_schema,
        errors=("USER_NOT_FOUND", "SUBSCRIPTION_LIMIT_EXCEEDED", *IDEMPOTENCY_ERRORS),
        security="internal",
        tag="internal",
        operation_id="recordUsage",
    ),
    # Sessions, activity, export and deletion (api/lifecycle.py).
    Operation(
        "/api/account/sessions",
        "get",
        "List the user's live sessions, newest first.",
        lifecycle_schemas.sessions_schema,
        tag="sessions",
        operation_id="listSessions",
    ),
    Operation(
        "/api/account/sessions",
        "delete",
        "Revoke every session of the user but this one.",
        lifecycle_schemas.revoked_schema,
        tag="sessions",
        operation_id="revokeOtherSessions",
    ),
    Operation(
        "/api/account/sessions/{session_id}",
        "delete",
        "Revoke one session; revoking the current one signs this browser out.",
        None,
        errors=("SESSION_NOT_FOUND",),
        tag="sessions",
        operation_id="revokeSession",
    ),
    Operation(
        "/api/account/activity",
        "get",
        "Page through the account's activity, newest first (query: limit, before).",
        lifecycle_schemas.activity_page_schema,
        errors=("VALIDATION_ERROR",),
        tag="sessions",
        operation_id="listActivity",
    ),
    Operation(
        "/api/account/export",
        "get",
        "Return everything the service holds about the user, as one JSON document.",
        lifecycle_schemas.export_schema,
        errors=("RATE_LIMITED",),
        operation_id="exportAccount",
    ),
    Operation(
        "/api/account",
        "delete",
        "Delete the account: cancel the paid subscription, end every session, erase the data.",
        None,
        request=lifecycle_schemas.account_delete_schema,
        errors=("INVALID_PASSWORD", "TWO_FACTOR_REQUIRED", "INVALID_TWO_FACTOR_CODE"),
        operation_id="deleteAccount",
    ),
]


def spec_for(app: Flask) -> dict[str, Any]:
    """Return the app's OpenAPI document, built once per app and cached on it."""
    cached = app.extensions.get(EXTENSION_KEY)
    if cached is None:
        cached = app.extensions[EXTENSION_KEY] = build_spec(app.config, OPERATIONS)
    return cached


def build_spec(config: dict[str, Any], operations: list[Operation]) -> dict[str, Any]:
    """Generate the OpenAPI 3.1 document for `operations`."""
    plugin = MarshmallowPlugin()
    spec = APISpec(
        title="SmartCV Account API",
        version=API_VERSION,
        openapi_version=OPENAPI_VERSION,
        plugins=[plugin],
        info={"description": "Accounts, security settings and subscriptions of SmartCV."},
    )
    _teach_custom_fields(plugin)
    schemes = {name: dict(scheme) for name, scheme in SECURITY_SCHEMES.items()}
    schemes["session"]["name"] = config.get("SESSION_COOKIE_NAME", "smartcv_session")
    for name, scheme in schemes.items():
        spec.components.security_scheme(name, scheme)
    spec.components.schema("ErrorEnvelope", _error_envelope())

    paths: dict[str, dict[str, Any]] = {}
    for operation in operations:
        paths.setdefault(operation.path, {})[operation.method] = _operation(plugin, operation)
    for path, methods in paths.items():
        spec.path(path=path, operations=methods, parameters=_path_parameters(path))
    return spec.to_dict()


def _teach_custom_fields(plugin: MarshmallowPlugin) -> None:
    """Describe the contract's own field types, which apispec cannot infer."""

    def custom_types(converter, field: fields.Field, **kwargs: Any) -> dict[str, Any]:
        """Return the JSON Schema type of a Timestamp or Money field."""
        # Both render None as null, and the schemas do not say which ones may be None.
        if isinstance(field, Timestamp):
            return {"type": ["string", "null"], "format": "date-time"}
        if isinstance(field, Money):
            return {"type": ["number", "null"]}
        return {}

    plugin.converter.add_attribute_function(custom_types)


def _error_envelope() -> dict[str, Any]:
    """The contract's error body: `success` false, a sentence, a code and details."""
    return {
        "type": "object",
        "required": ["success", "error", "code", "details"],
        "additionalProperties": False,
        "properties": {
            "success": {"const": False},
            "error": {"type": "string"},
            "code": {"type": "string", "enum": list(ERROR_CODES)},
            "details": {
                "type": "object",
                "properties": {
                    "field": {"type": "string"},
                    "fields": {
                        "type": "object",
                        "additionalProperties": {"type": "array", "items": {"type": "string"}},
                    },
                },
            },
        },
    }


def _operation(plugin: MarshmallowPlugin, operation: Operation) -> dict[str, Any]:
    """Build one OpenAPI operation object."""
    result: dict[str, Any] = {
        "summary": operation.summary,
        "operationId": operation.operation_id or _operation_id(operation),
        "tags": [operation.tag],
        "responses": {
            str(operation.status): {
                "description": operation.summary,
                "content": {"application/json": {"schema": _success_schema(plugin, operation)}},
            },
            **_error_responses(operation),
        },
    }
    if operation.request is not None:
        result["requestBody"] = {
            "required": True,
            "content": {
                "application/json": {
                    "schema": plugin.converter.resolve_nested_schema(operation.request)
                }
            },
        }
    if operation.query is not None:
        result["parameters"] = plugin.converter.schema2parameters(operation.query, location="query")
    if operation.security is not None:
        result["security"] = [{operation.security: []}]
    return result


def _success_schema(plugin: MarshmallowPlugin, operation: Operation) -> dict[str, Any]:
    """The success body: the response schema, inside the envelope unless told otherwise."""
    data = operation.response
    if data is not None and not isinstance(data, dict):
        data = plugin.converter.resolve_nested_schema(data)
    if operation.many:
        data = {"type": "array", "items": data}
    if not operation.envelope:
        return data or {}
    properties: dict[str, Any] = {"success": {"const": True}}
    required = ["success"]
    if operation.message:
        properties["message"] = {"type": "string"}
        required.append("message")
    if data is not None:
        properties["data"] = data
        required.append("data")
    return {
        "type": "object",
        "required": required,
        "properties": properties,
        "additionalProperties": False,
    }


def _error_responses(operation: Operation) -> dict[str, Any]:
    """One error-envelope response per status the operation's codes map to."""
    codes = [*operation.errors, *ALWAYS]
    if operation.method in ("post", "put", "patch", "delete"):
        codes += BODY_METHOD_ERRORS
    if operation.request is not None:
        codes += JSON_BODY_ERRORS
    if operation.security is not None:
        codes += SECURITY_ERRORS[operation.security]
    by_status: dict[int, list[str]] = {}
    for code in dict.fromkeys(codes):  # de-duplicated, in order
        by_status.setdefault(ERROR_CODES[code], []).append(code)
    return {
        str(status): {
            "description": ", ".join(by_status[status]),
            "content": {
                "application/json": {"schema": {"$ref": "#/components/schemas/ErrorEnvelope"}}
            },
            **({"headers": _retry_after()} if status == 429 else {}),
        }
        for status in sorted(by_status)
    }


def _retry_after() -> dict[str, Any]:
    """The Retry-After header a 429 carries."""
    return {
        "Retry-After": {
            "description": "Seconds to wait before trying again.",
            "schema": {"type": "integer"},
            "required": True,
        }
    }


_PATH_PARAMETER = re.compile(r"{([^{}]+)}")


def _path_parameters(path: str) -> list[dict[str, Any]]:
    """Declare each `{name}` of the path as a required string parameter."""
    return [
        {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
        for name in _PATH_PARAMETER.findall(path)
    ]


def _operation_id(operation: Operation) -> str:
    """Derive an operation id such as `put_api_account_security` from method and path."""
    slug = re.sub(r"[^A-Za-z0-9]+", "_", operation.path).strip("_")
    return f"{operation.method}_{slug}"


def flask_path(rule: str) -> str:
    """Turn a Flask rule (`/users/<int:user_id>`) into an OpenAPI path (`/users/{user_id}`)."""
    return re.sub(r"<(?:[^<>:]+:)?([^<>]+)>", r"{\1}", rule)
