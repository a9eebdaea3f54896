"""The schema base class, the contract's field types and the JSON body loader."""

from __future__ import annotations

import json
from collections import deque
from typing import Any

from flask import request
from marshmallow import RAISE, Schema, ValidationError, fields, validate

from ..errors import ApiError, validation_error


def about(description: str, example: Any = None, omitted_when: str = "") -> dict[str, Any]:
    """A field's metadata for the reference: what it means, an example value, and for a response
    field that is not always there, when it is left out (it is `required` otherwise)."""
    metadata: dict[str, Any] = {"description": description}
    if example is not None:
        metadata["example"] = example
    if omitted_when:
        metadata["x-omittedWhen"] = omitted_when
    return metadata


def next_cursor_field() -> fields.String:
    """`nextCursor` of a page of events (the account's activity, a team's log)."""
    return fields.String(
        data_key="nextCursor",
        allow_none=True,
        metadata=about(
            "Pass as `before` for the next page; null on the last page.",
            "evt_0123456789abcdef01234567",
        ),
    )


def current_password_field(load_only: bool = True) -> fields.String:
    """`currentPassword` of a guarded change: an account without a password leaves it out."""
    return fields.String(
        data_key="currentPassword",
        load_only=load_only,
        validate=validate.Length(max=1024),
        metadata=about(
            "The current password (an account without one: left out, and a sign-in less than"
            " 10 minutes old).",
            "correct horse battery staple 42",
        ),
    )


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


class Timestamp(fields.DateTime):
    """An aware UTC datetime rendered as `2024-01-15T10:00:00Z` (every stored time is UTC)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(format="%Y-%m-%dT%H:%M:%SZ", **kwargs)


def _major_units(cents: int) -> int | float:
    """2999 -> 29.99, 3000 -> 30: the contract's money as a JSON number."""
    return cents / 100 if cents % 100 else cents // 100


class Money(fields.Number):
    """Integer minor units rendered as a JSON number in major units (2999 -> 29.99)."""

    num_type = staticmethod(_major_units)


def json_body() -> dict[str, Any]:
    """Return the request's JSON object, or raise the contract's 415/400 errors."""
    if not request.is_json:
        raise ApiError("UNSUPPORTED_MEDIA_TYPE", "Send the request body as application/json.")
    raw = request.get_data(cache=True)
    limit = request.max_content_length
    if request.content_length is None and limit is not None and len(raw) >= limit:
        # A chunked body carries no length: Werkzeug stops reading at the limit without saying
        # so, and the cut-off JSON would read as INVALID_JSON. Reaching the limit is too large.
        raise ApiError("PAYLOAD_TOO_LARGE", "The request body is larger than 1 MiB.")
    if not raw.strip():
        raise ApiError("INVALID_JSON", "The request body is empty; send a JSON object.")
    try:
        data = json.loads(raw)
    except (ValueError, RecursionError):
        raise ApiError("INVALID_JSON", "The request body is not valid JSON.") from None
    if not isinstance(data, dict):
        raise ApiError(
            "VALIDATION_ERROR",
            "The request body must be a JSON object.",
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


def load_query(schema: Schema, args: Any) -> dict[str, Any]:
    """Validate the query string with `schema` (errors become VALIDATION_ERROR)."""
    return schema.load(args.to_dict())
