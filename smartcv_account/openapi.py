"""The OpenAPI 3.1 document, generated from the routes and what each view declares.

A view declares its request schema, response schema and error codes once, with `endpoint`:

    @bp.post("/register")
    @endpoint(body=register_schema, response=account_schema, status=201,
              errors=("EMAIL_TAKEN",), security=None)
    def register(fields): ...

The declaration is also what runs: `body=` loads and validates the JSON body with that schema
and passes the result to the view as its first argument (`query=` does the same for the query
string). `build_spec` walks `app.url_map`, reads each view's declaration and adds what every
endpoint of a kind can answer (415/413/400 for a body, 401 for a session, 500/503 for all);
statuses come from the one table in `errors.py`. The summary is the view's docstring's first
line and its description the rest of the docstring, the operation id its function name, the tag
its blueprint. `tests/test_openapi.py` fails for a route without a declaration.

Then the document is completed: fields of schemas only responses use are marked `required`
(unless their metadata says `x-omittedWhen`), and every JSON body gets an example built from its
fields' examples (`schemas.base.about`), each error answer one per code (`error_reference.py`).
Views wrapped by `idempotency.idempotent` document the `Idempotency-Key` header.
"""

from __future__ import annotations

import functools
import inspect
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin
from flask import Flask, request
from marshmallow import Schema, fields

from .error_reference import error_envelope_schema, error_example
from .errors import ERRORS
from .schemas.base import Money, Timestamp, load_body, load_query

OPENAPI_VERSION = "3.1.0"
API_VERSION = "0.1.0"
EXTENSION_KEY = "smartcv_openapi"
IGNORED_METHODS = frozenset({"HEAD", "OPTIONS"})

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


@dataclass(frozen=True)
class Operation:
    """What one view declares about itself.

    `response` is the schema of the success envelope's `data` (a marshmallow schema, or a raw
    JSON Schema dict), or None when the envelope carries no data. With `envelope=False` the
    response is the body itself (health check, this document).
    """

    response: Schema | type[Schema] | dict[str, Any] | None
    body: Schema | None = None
    query: Schema | None = None
    status: int = 200
    errors: tuple[str, ...] = ()
    security: str | None = "session"
    envelope: bool = True
    message: bool = False  # the success envelope also carries a `message` string
    # A body that is not JSON (the reference page and its assets), with an example of it.
    media_type: str = "application/json"
    example: Any = None


def endpoint(
    response: Schema | type[Schema] | dict[str, Any] | None = None, **declared: Any
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Declare a view's schemas and error codes; load its body (or query) with the schema.

    Place it directly under the route decorator. Keywords are `Operation`'s fields.
    """
    operation = Operation(response, **declared)
    for code in operation.errors:
        ERRORS[code]  # noqa: B018 - an unknown code fails at import, not in production

    def declare(view: Callable[..., Any]) -> Callable[..., Any]:
        """Attach the declaration, and pass the loaded input when there is one to load."""
        if operation.body is None and operation.query is None:
            view.openapi = operation  # type: ignore[attr-defined]
            return view

        @functools.wraps(view)
        def loading(*args: Any, **kwargs: Any) -> Any:
            """Load the request's input with the declared schema, then run the view."""
            if operation.body is not None:
                loaded = load_body(operation.body)
            else:
                loaded = load_query(operation.query, request.args)
            return view(loaded, *args, **kwargs)

        loading.openapi = operation  # type: ignore[attr-defined]
        return loading

    return declare


def declaration(view: Callable[..., Any]) -> Operation | None:
    """Return what `view` declared with `endpoint`, or None."""
    return getattr(view, "openapi", None)


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
        info={"description": "Accounts, security settings and subscriptions of SmartCV."},
    )
    _teach_custom_fields(plugin)
    schemes = {name: dict(scheme) for name, scheme in SECURITY_SCHEMES.items()}
    schemes["session"]["name"] = app.config.get("SESSION_COOKIE_NAME", "smartcv_session")
    for name, scheme in schemes.items():
        spec.components.security_scheme(name, scheme)
    spec.components.schema("ErrorEnvelope", error_envelope_schema())

    paths: dict[str, dict[str, Any]] = {}
    for rule in sorted(app.url_map.iter_rules(), key=lambda rule: rule.rule):
        view = app.view_functions[rule.endpoint]
        operation = declaration(view)
        if operation is None:
            continue
        for method in sorted(rule.methods - IGNORED_METHODS):
            paths.setdefault(flask_path(rule.rule), {})[method.lower()] = _operation(
                plugin, operation, view, rule.endpoint, method.lower()
            )
    for path, methods in paths.items():
        spec.path(path=path, operations=methods, parameters=_path_parameters(path))
    document = spec.to_dict()
    mark_response_fields_required(document)
    add_examples(document)
    return document


def _teach_custom_fields(plugin: MarshmallowPlugin) -> None:
    """Describe the contract's own field types, which apispec cannot infer."""

    def custom_types(converter, field: fields.Field, **kwargs: Any) -> dict[str, Any]:
        """Return the JSON Schema type of a Timestamp or Money field."""
        # Both render None as null, and the schemas do not say which ones may be None.
        if isinstance(field, Timestamp):
            pattern = r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$"
            example = field.metadata.get("example", "2026-01-15T10:00:00Z")
            return {
                "type": ["string", "null"],
                "format": "date-time",
                "pattern": pattern,
                "example": example,
            }
        if isinstance(field, Money):
            return {"type": ["number", "null"]}
        return {}

    plugin.converter.add_attribute_function(custom_types)


def _operation(
    plugin: MarshmallowPlugin, operation: Operation, view: Callable, name: str, method: str
) -> dict[str, Any]:
    """Build one OpenAPI operation object."""
    summary, _, description = inspect.cleandoc(view.__doc__ or name).partition("\n")
    result: dict[str, Any] = {
        "summary": summary,
        "description": description.strip(),
        "operationId": _camel(view.__name__),
        "tags": [name.partition(".")[0]],
        "responses": {
            str(operation.status): _success_response(plugin, operation, view, summary),
            **_error_responses(operation, method),
        },
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
    if operation.security is not None:
        result["security"] = [{operation.security: []}]
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
    if operation.message:
        properties["message"] = {
            "type": "string",
            "description": "A sentence saying what was done.",
            "example": "Security settings updated successfully",
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


def _error_responses(operation: Operation, method: str) -> dict[str, Any]:
    """One error-envelope response per status the operation's codes map to."""
    codes = [*operation.errors, *ALWAYS]
    if method in ("post", "put", "patch", "delete"):
        codes += BODY_METHOD_ERRORS
    if operation.body is not None:
        codes += JSON_BODY_ERRORS
    if operation.query is not None:
        codes.append("VALIDATION_ERROR")
    if operation.security is not None:
        codes += SECURITY_ERRORS[operation.security]
    by_status: dict[int, list[str]] = {}
    for code in dict.fromkeys(codes):  # de-duplicated, in order
        by_status.setdefault(ERRORS[code], []).append(code)
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
    """The documented success answer: its body, and the replay header where keys are honoured."""
    media: dict[str, Any] = {"schema": _success_schema(plugin, operation)}
    if operation.example is not None:
        media["example"] = operation.example
    response: dict[str, Any] = {
        "description": summary,
        "content": {operation.media_type: media},
    }
    if honours_idempotency_key(view):
        response["headers"] = REPLAYED_HEADER
    return response


def _operations(document: dict[str, Any]):
    """Yield every operation object of the document."""
    for item in document["paths"].values():
        for method, operation in item.items():
            if method != "parameters":
                yield operation


def _bodies(operation: dict[str, Any]):
    """Yield (kind, media type object) for the operation's JSON request and response bodies."""
    if "requestBody" in operation:
        yield "request", operation["requestBody"]["content"]["application/json"]
    for status, response in operation["responses"].items():
        media = response.get("content", {}).get("application/json")
        if media is not None:
            yield ("error" if int(status) >= 400 else "response"), media


def _refs(schema: Any, components: dict[str, Any], seen: set[str]) -> set[str]:
    """Return the names of the components `schema` reaches, transitively."""
    if isinstance(schema, dict):
        ref = schema.get("$ref")
        if ref is not None:
            name = ref.rsplit("/", 1)[-1]
            if name not in seen:
                seen.add(name)
                _refs(components[name], components, seen)
        for value in schema.values():
            _refs(value, components, seen)
    elif isinstance(schema, list):
        for value in schema:
            _refs(value, components, seen)
    return seen


def mark_response_fields_required(document: dict[str, Any]) -> None:
    """Mark every field of a schema only responses use as `required`: a response always
    carries every field of its schema (null where it has no value), never omits one."""
    components = document["components"]["schemas"]
    used_by: dict[str, set[str]] = {"request": set(), "response": set()}
    for operation in _operations(document):
        for kind, media in _bodies(operation):
            if kind != "error":
                _refs(media["schema"], components, used_by[kind])
    for name in used_by["response"] - used_by["request"]:
        schema = components[name]
        schema["required"] = [
            key
            for key, value in schema["properties"].items()
            if not value.get("writeOnly") and "x-omittedWhen" not in value
        ]


class MissingExample(ValueError):
    """A schema property has neither an example nor a closed set of values to take one from."""


def example_of(
    schema: dict[str, Any], components: dict[str, Any], kind: str = "response", path: str = ""
) -> Any:
    """Build an example value of `schema` from the examples of its properties.

    A request example leaves out read-only properties, a response example write-only ones.
    """
    if "example" in schema:
        return schema["example"]
    if "$ref" in schema:
        component = components[schema["$ref"].rsplit("/", 1)[-1]]
        return example_of(component, components, kind, path)
    for key in ("anyOf", "oneOf"):
        if key in schema:
            branches = [branch for branch in schema[key] if branch.get("type") != "null"]
            return example_of(branches[0], components, kind, path)
    if "const" in schema:
        return schema["const"]
    if "enum" in schema:
        return schema["enum"][0]
    kind_of = schema.get("type")
    types = kind_of if isinstance(kind_of, list) else [kind_of]
    if "object" in types and "properties" in schema:
        hidden = "readOnly" if kind == "request" else "writeOnly"
        return {
            key: example_of(value, components, kind, f"{path}.{key}")
            for key, value in schema["properties"].items()
            if not value.get(hidden)
        }
    if "array" in types:
        return [example_of(schema.get("items", {}), components, kind, f"{path}[]")]
    if "boolean" in types:
        return True
    if "null" in types:
        return None
    raise MissingExample(f"no example for {path or 'the body'}")


def add_examples(document: dict[str, Any]) -> None:
    """Give every JSON request and success body an example built from its fields' examples,
    and every error answer one example per code it may carry."""
    components = document["components"]["schemas"]
    for operation in _operations(document):
        for kind, media in _bodies(operation):
            if "example" in media or "examples" in media:
                continue
            if kind == "error":
                continue  # filled in below, per code
            media["example"] = example_of(media["schema"], components, kind)
        for status, response in operation["responses"].items():
            if int(status) >= 400:
                response["content"]["application/json"]["examples"] = {
                    code: {"summary": code, "value": error_example(code)}
                    for code in response["description"].split(", ")
                }
