"""What an error's `details` may hold: each key's JSON Schema, for the document (errors.py
gives each ErrorCode's keys their example values)."""

from __future__ import annotations

# The keys `details` may hold; an ErrorCode gives each the example's value (`detail`).
FIELD = {
    "type": "string",
    "description": "The request field (or header) the error is about; with VALIDATION_ERROR "
    "the first invalid one.",
}
FIELDS = {
    "type": "object",
    "description": "Each invalid field (dotted path for nested ones, `_schema` for the body as "
    "a whole) with its messages.",
    "additionalProperties": {"type": "array", "items": {"type": "string"}},
}
FEEDBACK = {
    "type": "object",
    "description": "Why the password is weak and how to make it stronger.",
    "required": ["warning", "suggestions", "score"],
    "properties": {
        "warning": {"type": "string", "description": "Why the password is easy to guess."},
        "suggestions": {
            "type": "array",
            "items": {"type": "string"},
            "description": "Ways to make it stronger.",
        },
        "score": {
            "type": "integer",
            "minimum": 0,
            "maximum": 4,
            "description": "Its zxcvbn strength score, 0 (weakest) to 4; 3 is needed.",
        },
    },
}
DECLINE_CODE = {
    "type": "string",
    "description": "The card issuer's reason, as Stripe names it (e.g. `card_declined`, "
    "`insufficient_funds`, `expired_card`).",
}
# The metric names are the usage service's; the document defines this component from them.
METRIC = {
    "$ref": "#/components/schemas/UsageMetric",
    "description": "The counter that would pass its limit.",
}
LIMIT = {"type": "integer", "description": "The plan's limit for that metric."}
USED = {"type": "integer", "description": "How much of it is used now."}
RETRY_AFTER = {
    "type": "integer",
    "minimum": 0,
    "description": "Seconds to wait before trying again (also `Retry-After`).",
}
REASON = {
    "type": "string",
    "description": "INVALID_COUPON: why a known coupon does not apply (`already_redeemed`: it is "
    "for a first subscription only); absent when the coupon does not exist. INVALID_PASSKEY: "
    "what was wrong with the browser's response: `challenge` (unknown, used or expired), "
    "`credential` (refused by the verification) or `duplicate` (the passkey is added already). "
    "INVALID_API_KEY: `unknown` (also a malformed key or a deleted user's key), `revoked` or "
    "`expired`.",
}
ORIGIN = {
    "type": "string",
    "description": "The refused page origin, when the Origin check refused the request.",
}
SCOPE = {"type": "string", "description": "The scope the call needs."}
SCOPES = {"type": "array", "items": {"type": "string"}, "description": "The key's scopes."}
SEATS = {"type": "integer", "minimum": 1, "description": "The team's seats."}
TEAMS = {
    "type": "array",
    "description": "The teams the account is the only owner of, with other members: make "
    "someone else an owner, or remove the others, first.",
    "items": {
        "type": "object",
        "required": ["id", "name"],
        "properties": {
            "id": {"type": "string", "description": "The team's id."},
            "name": {"type": "string", "description": "The team's name."},
        },
    },
}
