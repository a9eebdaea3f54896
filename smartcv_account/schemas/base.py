"""The schema base class, the contract's field types and the JSON body loader."""

from __future__ import annotations

import json
from typing import Any

from flask import request
from marshmallow import RAISE, Schema, ValidationError, fields

from .. import clock
from ..errors import ApiError


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


def json_body() -> dict[str, Any]:
    """Return the request's JSON object, or raise the contract's 415/400 errors."""
    if not request.is_json:
        raise ApiError("UNSUPPORTED_MEDIA_TYPE", "Send the request body as application/json.", 415)
    raw = request.get_data(cache=True)
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
    return data


def load_body(schema: Schema) -> dict[str, Any]:
    """Parse the JSON body and validate it with `schema` (errors become VALIDATION_ERROR)."""
    data = json_body()
    try:
        return schema.load(data)
    except RecursionError:
        raise ValidationError({"_schema": ["The request body is nested too deeply."]}) from None
