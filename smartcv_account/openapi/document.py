"""The route walker: the OpenAPI 3.1 document of every route and what its view declares.

`build_spec` walks `app.url_map`, reads each view's `@endpoint` declaration and adds what every
endpoint of a kind can answer (415/413/400 for a body, 401 for a session, 403 for a page load
started on another site, 500/503 for all); statuses, examples and `details` come from the one
table in `error_codes.py`. The summary is the view's docstring's first line and its description the
rest of the docstring, the operation id its function name, the tag its blueprint. Public
operations say so with `security: []`; views wrapped by `idempotency.idempotent` document the
`Idempotency-Key` header; declared links point at the operations a client may call next.
`postprocess.py` then completes the document (required fields, examples).
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable, Iterator
from typing import Any

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin
from flask import Flask
from marshmallow import fields

from ..error_codes import ERRORS
from ..http import NAVIGABLE_PREFIXES
from ..schemas.base import Money, Timestamp
from ..schemas.usage import METRIC_NAMES
from .endpoint import Link, Operation, declaration
from .postprocess import add_examples, mark_response_fields_required

OPENAPI_VERSION = "3.1.0"
API_VERSION = "0.1.0"
EXTENSION_KEY = "smartcv_openapi"
IGNORED_METHODS = frozenset({"HEAD", "OPTIONS"})
INFO = {
    "description": "Accounts, security settings and subscriptions of SmartCV.",
    "license": {"name": "Proprietary"},
}
# Relative: the API is served by the host that serves this document, whatever its name.
SERVERS = [{"url": "/", "description": "The service that serves this document."}]

# Codes any endpoint can answer with, by what the endpoint is.
ALWAYS = ("INTERNAL_ERROR", "SERVICE_UNAVAILABLE")
# http.py checks the Content-Type of any body sent with these methods, even where none is read,
# and cors.py refuses them from an origin that is neither this service's nor listed.
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


def spec_for(app: Flask) -> dict[str, Any]:
    """Return the app's OpenAPI document, built once per app and cached on it."""
    cached = app.extensions.get(EXTENSION_KEY)
    if cached is None:
        cached = app.extensions[EXTENSION_KEY] = build_spec(app)
    return cached


def build_spec(app: Flask) -> dict[str, Any]:
    """Generate the OpenAPI 3.1 document of every route of `app`."""
    plugin = MarshmallowPlugin()
    spec = APISpec(
        title="SmartCV Account API",
        version=API_VERSION,
        openapi_version=OPENAPI_VERSION,
        plugins=[plugin],
        info=INFO,
        servers=SERVERS,
    )
    _teach_custom_fields(plugin)
    schemes = {name: dict(scheme) for name, scheme in SECURITY_SCHEMES.items()}
    schemes["session"]["name"] = app.config.get("SESSION_COOKIE_NAME", "smartcv_session")
    for name, scheme in schemes.items():
        spec.components.security_scheme(name, scheme)
    spec.components.schema("UsageMetric", METRIC_NAMES)
    spec.components.schema("ErrorEnvelope", error_envelope_schema())

    paths: dict[str, dict[str, Any]] = {}
    for path, method, view, operation, name in _declared_routes(app):
        paths.setdefault(path, {})[method] = _operation(plugin, operation, view, name, path, method)
    _check_links(paths)
    for path, methods in paths.items():
        spec.path(path=path, operations=methods, parameters=_path_parameters(path))
    document = spec.to_dict()
    mark_response_fields_required(document)
    add_examples(document)
    return document


def _declared_routes(app: Flask) -> Iterator[tuple[str, str, Callable, Operation, str]]:
    """Yield (path, method, view, declaration, endpoint name) for each declared route, in order."""
    for rule in sorted(app.url_map.iter_rules(), key=lambda rule: rule.rule):
        view = app.view_functions[rule.endpoint]
        operation = declaration(view)
        if operation is None:
            continue
        for method in sorted(rule.methods - IGNORED_METHODS):
            yield flask_path(rule.rule), method.lower(), view, operation, rule.endpoint


def _teach_custom_fields(plugin: MarshmallowPlugin) -> None:
    """Describe the contract's own field types, which apispec cannot infer."""

    def custom_types(converter, field: fields.Field, **kwargs: Any) -> dict[str, Any]:
        """Return the JSON Schema type of a Timestamp or Money field (null only if allowed)."""
        if isinstance(field, Timestamp):
            return {
                "type": ["string", "null"] if field.allow_none else "string",
                "format": "date-time",
                "pattern": r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$",
                "example": field.metadata.get("example", "2026-01-15T10:00:00Z"),
            }
        if isinstance(field, Money):
            return {"type": ["number", "null"] if field.allow_none else "number"}
        return {}

    plugin.converter.add_attribute_function(custom_types)


def _operation(
    plugin: MarshmallowPlugin,
    operation: Operation,
    view: Callable,
    endpoint: str,
    path: str,
    method: str,
) -> dict[str, Any]:
    """Build one OpenAPI operation object."""
    summary, _, description = inspect.cleandoc(view.__doc__ or endpoint).partition("\n")
    result: dict[str, Any] = {
        "summary": summary,
        "description": description.strip(),
        "operationId": _camel(view.__name__),
        "tags": [endpoint.partition(".")[0]],
        "responses": {
            str(operation.status): _success_response(plugin, operation, view, summary),
            **_error_responses(operation, path, method),
        },
        # No scheme is an empty list: the operation is public, not left unsaid.
        "security": [{operation.security: []}] if operation.security is not None else [],
    }
    if operation.body is not None:
        result["requestBody"] = {
            "required": True,
            "content": {
                "application/json": {
                    "schema": plugin.converter.resolve_nested_schema(operation.body)
                }
            },
        }
    parameters: list[Any] = []
    if operation.query is not None:
        parameters.append({"in": "query", "schema": operation.query})
    if honours_idempotency_key(view):
        parameters.append(IDEMPOTENCY_KEY_PARAMETER)
    if parameters:
        result["parameters"] = parameters
    return result


def _camel(name: str) -> str:
    """`update_security` -> `updateSecurity`."""
    first, *rest = name.split("_")
    return first + "".join(word.capitalize() for word in rest)


def _success_schema(plugin: MarshmallowPlugin, operation: Operation) -> dict[str, Any]:
    """The success body: the response schema, inside the envelope unless told otherwise."""
    data = operation.response
    if data is not None and not isinstance(data, dict):
        data = plugin.converter.resolve_nested_schema(data)
    if not operation.envelope:
        return data or {}
    properties: dict[str, Any] = {"success": {"const": True, "description": "Always true."}}
    required = ["success"]
    if operation.message is not None:
        properties["message"] = {
            "type": "string",
            "description": "A sentence saying what was done.",
            "example": operation.message,
        }
        required.append("message")
    if data is not None:
        properties["data"] = {**data, "description": "The result."}
        required.append("data")
    return {
        "type": "object",
        "description": "The success envelope.",
        "required": required,
        "properties": properties,
        "additionalProperties": False,
    }


def _error_responses(operation: Operation, path: str, method: str) -> dict[str, Any]:
    """One error-envelope response per status the operation's codes map to."""
    codes = [*operation.errors, *ALWAYS]
    if method in ("post", "put", "patch", "delete"):
        codes += BODY_METHOD_ERRORS
    if path.startswith("/api/") and not path.startswith(NAVIGABLE_PREFIXES):
        codes.append("FORBIDDEN")  # http.refuse_cross_site_navigation
    if operation.body is not None:
        codes += JSON_BODY_ERRORS
    if operation.query is not None:
        codes.append("VALIDATION_ERROR")
    if operation.security is not None:
        codes += SECURITY_ERRORS[operation.security]
    by_status: dict[int, list[str]] = {}
    for code in dict.fromkeys(codes):  # de-duplicated, in order
        by_status.setdefault(ERRORS[code].status, []).append(code)
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


def error_envelope_schema() -> dict[str, Any]:
    """The contract's error body: `success` false, a sentence, a code and its details.

    The `details` properties are those the codes of `errors.ERRORS` declare; each says which
    codes carry it.
    """
    properties: dict[str, dict[str, Any]] = {}
    carriers: dict[str, list[str]] = {}
    for code, error in ERRORS.items():
        for key, schema in error.details.items():
            shape = {name: value for name, value in schema.items() if name != "example"}
            if properties.setdefault(key, shape) != shape:
                raise ValueError(f"details.{key} of {code} is not the one other codes declare")
            carriers.setdefault(key, []).append(code)
    for key, codes in carriers.items():
        properties[key]["description"] += f" Carried by {', '.join(codes)}."
    by_code = "\n".join(
        f"- {code}: " + ", ".join(f"`{key}`" for key in error.details)
        for code, error in ERRORS.items()
        if error.details
    )
    return {
        "type": "object",
        "description": "Every error answer: the same four fields whatever the status.",
        "required": ["success", "error", "code", "details"],
        "additionalProperties": False,
        "properties": {
            "success": {"const": False, "description": "Always false on an error."},
            "error": {
                "type": "string",
                "description": "A sentence for a person, saying what went wrong and what to do.",
            },
            "code": {
                "type": "string",
                "enum": list(ERRORS),
                "description": "A stable code for programs; the HTTP status follows from it.",
            },
            "details": {
                "type": "object",
                "description": "More about the error, by code (`{}` for the codes not listed; "
                "a key may be absent where it does not apply):\n\n" + by_code,
                "properties": properties,
            },
        },
    }


def _links(links: tuple[Link, ...]) -> dict[str, Any]:
    """The OpenAPI links of a success answer, named by the operation each leads to."""
    result = {}
    for link in links:
        definition: dict[str, Any] = {
            "operationId": _camel(link.view),
            "description": link.description,
        }
        if link.parameters:
            definition["parameters"] = link.parameters
        if link.body is not None:
            definition["requestBody"] = link.body
        result[_camel(link.view)] = definition
    return result


def _check_links(paths: dict[str, dict[str, Any]]) -> None:
    """Refuse a link to an operation the document does not have (a misspelt view name)."""
    operations = [operation for item in paths.values() for operation in item.values()]
    known = {operation["operationId"] for operation in operations}
    for operation in operations:
        for response in operation["responses"].values():
            for link in response.get("links", {}).values():
                if link["operationId"] not in known:
                    raise LookupError(
                        f"{operation['operationId']} links to {link['operationId']}, "
                        "which no view declares"
                    )


_PATH_PARAMETER = re.compile(r"{([^{}]+)}")


def _path_parameters(path: str) -> list[dict[str, Any]]:
    """Declare each `{name}` of the path as a required string parameter."""
    return [
        {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
        for name in _PATH_PARAMETER.findall(path)
    ]


def flask_path(rule: str) -> str:
    """Turn a Flask rule (`/users/<int:user_id>`) into an OpenAPI path (`/users/{user_id}`)."""
    return re.sub(r"<(?:[^<>:]+:)?([^<>]+)>", r"{\1}", rule)


def honours_idempotency_key(view: Callable[..., Any]) -> bool:
    """True when `idempotency.idempotent` wraps the view (it marks what it wraps)."""
    return getattr(view, "honours_idempotency_key", False)


IDEMPOTENCY_KEY_PARAMETER = {
    "name": "Idempotency-Key",
    "in": "header",
    "required": False,
    "description": (
        "A key of your choosing (1-255 printable ASCII characters, e.g. a UUID) that makes a "
        "retry safe: the first answer below 500 is kept 24 hours for you and this key, and a "
        "repeat with the same body gets it again with `Idempotent-Replayed: true` instead of "
        "running twice. Another body with the same key is 422 IDEMPOTENCY_KEY_REUSED; a repeat "
        "while the first is still running is 409 IDEMPOTENCY_KEY_IN_USE."
    ),
    "schema": {"type": "string", "minLength": 1, "maxLength": 255, "pattern": "^[ -~]+$"},
    "example": "7f9c2ba4-e88f-4a0f-9d6c-1d2f0c3b8a51",
}
REPLAYED_HEADER = {
    "Idempotent-Replayed": {
        "description": "`true` when this is the kept answer of an earlier request with the "
        "same Idempotency-Key (nothing ran again); absent otherwise.",
        "schema": {"type": "string", "enum": ["true"]},
    }
}


def _success_response(
    plugin: MarshmallowPlugin, operation: Operation, view: Callable, summary: str
) -> dict[str, Any]:
    """The documented success answer: its body, the replay header where keys are honoured,
    and the links to what a client may call next."""
    media: dict[str, Any] = {"schema": _success_schema(plugin, operation)}
    if operation.example is not None:
        media["example"] = operation.example
    response: dict[str, Any] = {
        "description": summary,
        "content": {operation.media_type: media},
    }
    if honours_idempotency_key(view):
        response["headers"] = REPLAYED_HEADER
    if operation.links:
        response["links"] = _links(operation.links)
    return response
