"""The schema base class, the contract's field types and the JSON body loader."""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Callable
from typing import Any

from flask import request
from marshmallow import RAISE, Schema, ValidationError, fields, missing

from .. import clock
from ..errors import ApiError, validation_error


class BaseSchema(Schema):
    """Rejects unknown fields; every subclass is camelCase through `data_key`."""

    class Meta:
        unknown = RAISE


class Trimmed(fields.String):
    """A string with surrounding whitespace removed on load."""

    def _deserialize(self, value, attr, data, **kwargs):
        return super()._deserialize(value, attr, data, **kwargs).strip()


class StrictBoolean(fields.Boolean):
    """A boolean that accepts only JSON `true`/`false` (not "yes", 1 or "on")."""

    default_error_messages = {"invalid": "Must be true or false."}

    def _deserialize(self, value, attr, data, **kwargs):
        if not isinstance(value, bool):
            raise self.make_error("invalid")
        return value


class StrictInteger(fields.Integer):
    """An integer that accepts only JSON integers (not 1.0, "1" or true)."""

    def __init__(self, **kwargs):
        super().__init__(strict=True, **kwargs)

    def _deserialize(self, value, attr, data, **kwargs):
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.make_error("invalid")
        return super()._deserialize(value, attr, data, **kwargs)


class Timestamp(fields.Field):
    """An aware datetime rendered as `2024-01-15T10:00:00Z`."""

    def _serialize(self, value, attr, obj, **kwargs):
        return clock.isoformat(value)


class Money(fields.Field):
    """Integer minor units rendered as a JSON number in major units (2999 -> 29.99)."""

    def _serialize(self, value, attr, obj, **kwargs):
        if value is None:
            return None
        return value / 100 if value % 100 else value // 100


def plain_dumper(schema: Schema) -> Callable[[Any], dict[str, Any]]:
    """Return a function that dumps like `schema.dump`, for the reads every page load makes.

    marshmallow looks each value up through the schema's accessor, then checks it for a default
    and for being missing: about a microsecond a field, a third of the account's dump. This
    reads the attribute (or key) directly and hands it to the field's own `_serialize`, so the
    output is the same, which the tests assert for every state of the account and subscription.
    It takes plain fields and nested schemas without dump defaults or dotted attributes; a
    schema with anything else is refused when the dumper is built.
    """
    plan = []
    for name, field in schema.dump_fields.items():
        attribute = field.attribute or name
        if field.dump_default is not missing or "." in attribute or not field._CHECK_ATTRIBUTE:
            raise TypeError(f"plain_dumper cannot dump {type(schema).__name__}.{name}")
        single = isinstance(field, fields.Nested) and not field.many
        nested = plain_dumper(field.schema) if single else None
        plan.append((field.data_key or name, attribute, field._serialize, nested))

    def dump(obj: Any) -> dict[str, Any]:
        """Dump `obj` as the schema would."""
        data: dict[str, Any] = {}
        mapping = isinstance(obj, dict)
        for key, attribute, serialize, nested in plan:
            value = obj.get(attribute, missing) if mapping else getattr(obj, attribute, missing)
            if value is missing:
                continue
            if nested is not None:
                data[key] = None if value is None else nested(value)
            else:
                data[key] = serialize(value, attribute, obj)
        return data

    return dump


def json_body() -> dict[str, Any]:
    """Return the request's JSON object, or raise the contract's 415/400 errors."""
    if not request.is_json:
        raise ApiError("UNSUPPORTED_MEDIA_TYPE", "Send the request body as application/json.", 415)
    raw = request.get_data(cache=True)
    limit = request.max_content_length
    if request.content_length is None and limit is not None and len(raw) >= limit:
        # A chunked body carries no length: Werkzeug stops reading at the limit without saying
        # so, and the cut-off JSON would read as INVALID_JSON. Reaching the limit is too large.
        raise ApiError("PAYLOAD_TOO_LARGE", "The request body is larger than 1 MiB.", 413)
    if not raw.strip():
        raise ApiError("INVALID_JSON", "The request body is empty; send a JSON object.", 400)
    try:
        data = json.loads(raw)
    except (ValueError, RecursionError):
        raise ApiError("INVALID_JSON", "The request body is not valid JSON.", 400) from None
    if not isinstance(data, dict):
        raise ApiError(
            "VALIDATION_ERROR",
            "The request body must be a JSON object.",
            400,
            {"fields": {"_schema": ["The request body must be a JSON object."]}},
        )
    bad_path = _first_unstorable_string(data)
    if bad_path is not None:
        raise validation_error(
            {bad_path: ["Must not contain NUL or unpaired surrogate characters."]}
        )
    return data


def _unstorable(text: str) -> bool:
    """Tell whether a string holds what neither UTF-8 nor PostgreSQL text can carry."""
    if "\x00" in text:
        return True
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate such as "\ud800", legal in JSON escapes
        return True
    return False


def _first_unstorable_string(data: dict[str, Any]) -> str | None:
    """Return the dotted path of the first key or string value that cannot be stored, or None.

    Walks iteratively, so a body nested as deeply as json.loads allows cannot overflow the stack.
    """
    pending: deque[tuple[str, Any]] = deque([("", data)])
    while pending:
        path, value = pending.popleft()
        if isinstance(value, str):
            if _unstorable(value):
                return path
        elif isinstance(value, dict):
            for key, item in value.items():
                item_path = f"{path}.{key}" if path else key
                if _unstorable(key):
                    return item_path
                pending.append((item_path, item))
        elif isinstance(value, list):
            pending.extend((f"{path}.{index}", item) for index, item in enumerate(value))
    return None


def load_body(schema: Schema) -> dict[str, Any]:
    """Parse the JSON body and validate it with `schema` (errors become VALIDATION_ERROR)."""
    data = json_body()
    try:
        return schema.load(data)
    except RecursionError:
        raise ValidationError({"_schema": ["The request body is nested too deeply."]}) from None
