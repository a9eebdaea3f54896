"""Logging: one JSON line per record on the app's own handler, with secrets masked.

The app's handler (on the `smartcv_account` logger) carries two plain pieces: a
`RedactingFilter`, which masks secrets in each record before it is written, and a
`JsonFormatter`, which writes the record as one JSON object. What is masked:

1. Known values: the app's configured secrets (SECRET_KEY, INTERNAL_API_TOKEN, Stripe keys, the
   database password) and, during a request, the request's own secrets (cookie values, the
   Authorization header, password/code/secret fields of its JSON body).
2. Shapes: bearer tokens, Stripe keys, webhook secrets and otpauth:// URIs.
3. Names: `password=…`, `"secret": "…"` and similar key/value pairs, and the bound parameters
   SQLAlchemy puts into its error messages (they hold password hashes and encrypted secrets).
"""

from __future__ import annotations

import json
import logging
import re
import secrets
import sys
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import IO, Any

from flask import Flask, g, has_request_context, request
from sqlalchemy.engine import make_url

REDACTED = "[REDACTED]"
REQUEST_ID_HEADER = "X-Request-ID"
# A caller's id is echoed into headers and logs, so only a short, plain one is trusted.
SANE_REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,128}")
APP_LOGGER = "smartcv_account"
REQUEST_LOGGER = "smartcv_account.requests"

# Config keys whose values must never be printed.
SECRET_CONFIG_KEYS = (
    "SECRET_KEY",
    "INTERNAL_API_TOKEN",
    "STRIPE_SECRET_KEY",
    "STRIPE_WEBHOOK_SECRET",
    "DATA_ENCRYPTION_KEY",
)
# Shorter values are too likely to occur by chance (and too weak to be real secrets).
MIN_SECRET_LENGTH = 6

# JSON body keys (any depth, any case) whose values are secrets. Every log line runs this and
# `_TRIGGER` below several times: the lookahead of the alternatives' first letters lets the
# search pass over most positions without trying each alternative (twice as fast on short
# texts), and matches exactly what the alternatives alone would.
SENSITIVE_KEY = re.compile(
    r"(?=[abcopst])(?:pass(word|wd)?|secret|token|authori[sz]ation|cookie|otp"
    r"|two_?factor_?code|backup_?codes?|api_?key|client_?secret)",
    re.IGNORECASE,
)

_KEY_VALUE = re.compile(
    r"""(?ix)
    (["']?\b[\w-]*(?:password|passwd|secret|token|api[_-]?key|authorization|cookie
        |two_?factor_?code|backup_?codes?)["']?\s*[:=]\s*)
    ("(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|\[[^\]]*\]|[^\s,;&}]+)
    """
)
# Anything `_SHAPES` or `_KEY_VALUE` could match contains one of these: a text without any of
# them needs no pattern run (most log lines, every request line).
_TRIGGER = re.compile(
    r"(?i)(?=[abcoprstw\[])(?:bearer|basic|[srp]k_(?:live|test)_|whsec_|otpauth:|\[parameters:"
    r"|pass|secret|token|api[_-]?key|authori[sz]ation|cookie|two_?factor|backup_?code)"
)
_SHAPES = (
    (re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]+"), r"\1 " + REDACTED),
    (re.compile(r"\b(?:sk|rk|pk)_(?:live|test)_[A-Za-z0-9]+"), REDACTED),
    (re.compile(r"\bwhsec_[A-Za-z0-9_]+"), REDACTED),
    (re.compile(r"otpauth://\S+"), REDACTED),
    (re.compile(r"\[parameters: .*?\](?=\s|$|\n|\()", re.DOTALL), "[parameters: " + REDACTED + "]"),
)

# Attributes every LogRecord has; anything else on a record came from `extra=` or a filter.
_STANDARD_ATTRS = frozenset(vars(logging.LogRecord("x", logging.INFO, "x", 0, "x", None, None))) | {
    "message",
    "asctime",
    "taskName",
}


def request_id() -> str:
    """Return this request's id: the caller's `X-Request-ID` when sane, else a new one."""
    current = g.get("request_id")
    if current is None:
        offered = request.headers.get(REQUEST_ID_HEADER, "")
        current = offered if SANE_REQUEST_ID.fullmatch(offered) else secrets.token_hex(16)
        g.request_id = current
    return current


def redact(text: str, values: Iterable[str] = ()) -> str:
    """Return `text` with known secret values, secret-shaped tokens and key=value secrets masked."""
    if not text:
        return text
    present = [value for value in values if value in text]
    if not present and not _TRIGGER.search(text):
        return text
    # Longest first, so a secret that contains another is masked whole.
    for value in sorted(present, key=len, reverse=True):
        if len(value) >= MIN_SECRET_LENGTH and value in text:
            text = text.replace(value, REDACTED)
    for pattern, replacement in _SHAPES:
        text = pattern.sub(replacement, text)
    return _KEY_VALUE.sub(lambda match: match.group(1) + _masked_like(match.group(2)), text)


def _masked_like(value: str) -> str:
    """Keep the quoting of a masked value so redacted JSON-ish text stays readable."""
    if value[:1] in "\"'":
        return value[0] + REDACTED + value[0]
    return REDACTED


def configured_secrets(app: Flask) -> frozenset[str]:
    """Return the secret values of `app`'s configuration."""
    values = [app.config.get(key) for key in SECRET_CONFIG_KEYS]
    try:
        values.append(make_url(app.config["SQLALCHEMY_DATABASE_URI"]).password)
    except Exception:  # noqa: BLE001 - an unparsable URL has no password to hide
        pass
    return frozenset(v for v in values if isinstance(v, str) and len(v) >= MIN_SECRET_LENGTH)


def _collect(value: Any, sensitive: bool, found: set[str]) -> None:
    """Gather string leaves of `value`; under a sensitive key every leaf is a secret."""
    if isinstance(value, dict):
        for key, item in value.items():
            _collect(item, sensitive or bool(SENSITIVE_KEY.search(str(key))), found)
    elif isinstance(value, list):
        for item in value:
            _collect(item, sensitive, found)
    elif sensitive and isinstance(value, str | int) and not isinstance(value, bool):
        found.add(str(value))


def request_secrets() -> set[str]:
    """Return the secret values the current request carries: cookies, credentials, body fields."""
    found: set[str] = set(request.cookies.values())
    for header in ("Authorization", "Cookie", "Stripe-Signature"):
        value = request.headers.get(header)
        if value:
            found.add(value)
            found.update(value.replace(";", " ").replace(",", " ").split())
    try:
        # Flask caches the parsed body, so the view reads the same one.
        body = request.get_json(silent=True)
    except Exception:  # noqa: BLE001 - too large or too deep: it carries nothing we can pick out
        body = None
    _collect(body, False, found)
    return {value for value in found if len(value) >= MIN_SECRET_LENGTH}


def _redact_values(value: Any, secrets_: set[str] | frozenset[str]) -> Any:
    """Redact every string inside `value` (dicts and lists walked, secret keys masked)."""
    if isinstance(value, str):
        return redact(value, secrets_)
    if isinstance(value, dict):
        return {
            k: REDACTED if SENSITIVE_KEY.search(str(k)) else _redact_values(v, secrets_)
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return [_redact_values(v, secrets_) for v in value]
    return value


class RedactingFilter(logging.Filter):
    """Mask secrets in each record the app's handler writes, and add the request id."""

    def __init__(self, configured: frozenset[str]) -> None:
        """Remember the configured secrets to mask."""
        super().__init__()
        self.configured = configured

    def filter(self, record: logging.LogRecord) -> bool:
        """Rewrite the record's message, traceback and extra fields with secrets masked."""
        values: set[str] | frozenset[str] = self.configured
        if has_request_context():
            record.request_id = request_id()
            if record.name == REQUEST_LOGGER:
                return self._request_line(record)
            values = self.configured | request_secrets()
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a bad format string must not break the caller
            message = f"{record.msg!s} (unformattable arguments)"
        record.msg, record.args = redact(message, values), None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        record.exc_info = None  # the formatted, redacted text is what is written
        if record.exc_text:
            record.exc_text = redact(record.exc_text, values)
        if record.stack_info:
            record.stack_info = redact(record.stack_info, values)
        for key in vars(record).keys() - _STANDARD_ATTRS:
            value = getattr(record, key)
            masked = REDACTED if SENSITIVE_KEY.search(key) else _redact_values(value, values)
            setattr(record, key, masked)
        return True

    def _request_line(self, record: logging.LogRecord) -> bool:
        """Mask the request line, which `http.log_request` makes of the method, the path, the
        status, timings, the client's address and an error code: the path, the address and the
        request id are the only text a client chose, and no header or body is in it, so the
        request's own secrets are not gathered and the other fields not walked (every request
        writes this line)."""
        record.msg, record.args = redact(record.getMessage(), self.configured), None
        for field in ("path", "remote_addr", "request_id"):
            setattr(record, field, redact(getattr(record, field), self.configured))
        return True


class JsonFormatter(logging.Formatter):
    """Render a record as one JSON object on one line."""

    def format(self, record: logging.LogRecord) -> str:
        """Return the JSON line for `record`."""
        created = datetime.fromtimestamp(record.created, UTC)
        payload: dict[str, Any] = {
            "time": created.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key in sorted(vars(record).keys() - _STANDARD_ATTRS):
            payload[key] = getattr(record, key)
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            payload["exc_info"] = record.exc_text
        if record.stack_info:
            payload["stack_info"] = record.stack_info
        return json.dumps(payload, default=str, ensure_ascii=False)


def make_handler(app: Flask, stream: IO[str] | None = None) -> logging.Handler:
    """Return the app's handler: JSON lines to `stream` (standard error), secrets masked."""
    handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(RedactingFilter(configured_secrets(app)))
    return handler


def configure_logging(app: Flask) -> None:
    """Print the app's logs as JSON lines with secrets masked (tests add the handler themselves)."""
    logger = logging.getLogger(APP_LOGGER)
    if logger.level == logging.NOTSET:
        logger.setLevel(app.config.get("LOG_LEVEL", "INFO"))
    if app.testing or any(isinstance(h.formatter, JsonFormatter) for h in logger.handlers):
        return
    logger.addHandler(make_handler(app))
