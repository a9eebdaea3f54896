"""Structured logging: one JSON line per record, and redaction that keeps secrets out of logs.

Redaction happens when a record is *created* (a log record factory), not when a handler
formats it, so every handler in the process — ours, gunicorn's, pytest's caplog, a log
shipper's — only ever sees the scrubbed text. Three layers, because no single one is enough:

1. Known values: the app's configured secrets (SECRET_KEY, INTERNAL_API_TOKEN, Stripe keys, the
   database password) and, during a request, the request's own secrets (cookie values, the
   Authorization header, password/code/secret fields of its JSON body) are replaced wherever
   they appear.
2. Shapes: bearer tokens, Stripe keys, webhook secrets and otpauth:// URIs.
3. Names: `password=…`, `"secret": "…"` and similar key/value pairs, and the bound parameters
   SQLAlchemy puts into its error messages (they hold password hashes and encrypted secrets).
"""

from __future__ import annotations

import itertools
import json
import logging
import os
import re
import secrets
import sys
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

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

# JSON body keys (any depth, any case) whose values are secrets.
SENSITIVE_KEY = re.compile(
    r"pass(word|wd)?|secret|token|authori[sz]ation|cookie|otp|two_?factor_?code|backup_?codes?"
    r"|api_?key|client_?secret",
    re.IGNORECASE,
)

_KEY_VALUE = re.compile(
    r"""(?ix)
    (["']?\b[\w-]*(?:password|passwd|secret|token|api[_-]?key|authorization|cookie
        |two_?factor_?code|backup_?codes?)["']?\s*[:=]\s*)
    ("(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|\[[^\]]*\]|[^\s,;&}]+)
    """
)
_SHAPES = (
    (re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]+"), r"\1 " + REDACTED),
    (re.compile(r"\b(?:sk|rk|pk)_(?:live|test)_[A-Za-z0-9]+"), REDACTED),
    (re.compile(r"\bwhsec_[A-Za-z0-9_]+"), REDACTED),
    (re.compile(r"otpauth://\S+"), REDACTED),
    (re.compile(r"\[parameters: .*?\](?=\s|$|\n|\()", re.DOTALL), "[parameters: " + REDACTED + "]"),
)

# Anything `_SHAPES` or `_KEY_VALUE` could match starts with one of these: text without any of
# them needs no pattern run.
_TRIGGER = re.compile(
    r"(?i)bearer|basic|[srp]k_(?:live|test)_|whsec_|otpauth:|\[parameters:|pass|secret|token"
    r"|api[_-]?key|authori[sz]ation|cookie|two_?factor|backup_?code"
)

# Values registered from app configuration; shared by every app in the process.
_known_secrets: set[str] = set()

# Attributes every LogRecord has; anything else on a record came from `extra=`.
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
        current = offered if SANE_REQUEST_ID.fullmatch(offered) else _new_request_id()
        g.request_id = current
    return current


_ids: tuple[int, str, Iterator[int]] = (0, "", iter(()))


def _new_request_id() -> str:
    """Return an id no other request of any process has: a random per-process prefix and a count.

    Request ids correlate log lines; they need to be unique, not unguessable, so one random
    draw per process replaces one per request.
    """
    global _ids
    pid, prefix, counter = _ids
    if pid != os.getpid():  # first use, or a forked worker
        pid, prefix, counter = os.getpid(), secrets.token_hex(10), itertools.count(1)
        _ids = (pid, prefix, counter)
    return f"{prefix}{next(counter):012x}"


def redact(text: str, values: Iterable[str] = ()) -> str:
    """Return `text` with known secret values, secret-shaped tokens and key=value secrets masked."""
    if not text:
        return text
    if not values and len(text) <= _REMEMBERED_LENGTH:
        return _redact_short(text)
    return _redact(text, values)


# Short texts without request secrets (methods, paths, addresses, logger names) recur on every
# request line: their redaction is remembered until the known secrets change.
_REMEMBERED_LENGTH = 256


@lru_cache(maxsize=4096)
def _redact_short(text: str) -> str:
    """`redact` of a short text with the configured secrets only."""
    return _redact(text, ())


def _redact(text: str, values: Iterable[str]) -> str:
    """Mask known values, then secret shapes, then key=value secrets."""
    present = [value for value in (*_known_secrets, *values) if value in text]
    if not present and not _TRIGGER.search(text):
        # Most lines (every request line) hold no secret and no word that could introduce one:
        # one search decides that, instead of every pattern below.
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


def remember_secrets(app: Flask) -> None:
    """Register the secret values of `app`'s configuration for redaction."""
    values = [app.config.get(key) for key in SECRET_CONFIG_KEYS]
    try:
        values.append(make_url(app.config["SQLALCHEMY_DATABASE_URI"]).password)
    except Exception:  # noqa: BLE001 - an unparsable URL has no password to hide
        pass
    _known_secrets.update(v for v in values if isinstance(v, str) and len(v) >= MIN_SECRET_LENGTH)
    _redact_short.cache_clear()


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


def request_secrets() -> frozenset[str]:
    """Return (and cache on `g`) the secret values the current request carries."""
    body_read = _body_is_cached()
    cached = g.get("_log_secrets")
    # Recompute once the view has read the body: an early record saw no body secrets yet.
    if cached is not None and cached[0] == body_read:
        return cached[1]
    found: set[str] = set(request.cookies.values())
    for header in ("Authorization", "Cookie", "Stripe-Signature"):
        value = request.headers.get(header)
        if value:
            found.add(value)
            found.update(value.replace(";", " ").replace(",", " ").split())
    try:
        # Only a body the view already read (cached); reading it here could raise 413 mid-log.
        raw = request.get_data(cache=True) if request.is_json and body_read else b""
        body = json.loads(raw) if raw else None
    except Exception:  # noqa: BLE001 - a malformed body carries nothing we can pick out
        body = None
    _collect(body, False, found)
    values = frozenset(s for s in found if len(s) >= MIN_SECRET_LENGTH)
    g._log_secrets = (body_read, values)
    return values


def _body_is_cached() -> bool:
    """True when the request body has been read into memory already."""
    return getattr(request, "_cached_data", None) is not None


def _scrub(record: logging.LogRecord) -> None:
    """Replace the record's message, arguments and traceback text with redacted text."""
    in_request = has_request_context()
    # The per-request line is made of the method, path, status and timings this module chose,
    # never of headers or body, so the request's own secrets cannot be in it; skipping their
    # collection keeps it off the hot path. Configured secrets and shapes are still masked.
    scan_request = in_request and record.name != REQUEST_LOGGER
    values = request_secrets() if scan_request else frozenset()
    try:
        message = record.getMessage()
    except Exception:  # noqa: BLE001 - a bad format string must not break the caller
        message = f"{record.msg!s} (unformattable arguments)"
    record.msg = redact(message, values)
    record.args = None
    if record.exc_info and not record.exc_text:
        record.exc_text = logging.Formatter().formatException(record.exc_info)
    if record.exc_text:
        record.exc_text = redact(record.exc_text, values)
    if record.stack_info:
        record.stack_info = redact(record.stack_info, values)
    if in_request:
        # Every record made during a request carries its id, so lines can be correlated. Ids
        # are unique: redacted here without the cache of short texts, which they would only
        # crowd out.
        record.request_id = _redact(request_id(), ())
    # What the factory scrubbed (message, traceback, stack, request id) the formatter need not
    # scan again.
    record._scrubbed = True


def install_record_factory() -> None:
    """Make every log record in the process redacted at creation (idempotent)."""
    previous = logging.getLogRecordFactory()
    if getattr(previous, "smartcv_redacting", False):
        return

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        """Build the record as before, then scrub it before any handler can see it."""
        record = previous(*args, **kwargs)
        try:
            _scrub(record)
        except Exception:  # noqa: BLE001 - logging must never take the request down
            record.msg, record.args = "log record dropped: redaction failed", None
            record.exc_info = record.exc_text = None
        return record

    factory.smartcv_redacting = True  # type: ignore[attr-defined]
    logging.setLogRecordFactory(factory)


class JsonFormatter(logging.Formatter):
    """Render a record as one JSON object on one line, no string in it unredacted.

    Every request writes one of these lines, so the work per line is kept small: what the
    record factory already scrubbed (message, traceback, request id) is not scanned twice, the
    time is formatted once per second, and whether a key names a secret is decided once per key
    name. `extra=` fields bypass the record factory, so their values are always redacted here.
    """

    _second: int | None = None
    _second_text = ""

    def format(self, record: logging.LogRecord) -> str:
        """Return the JSON line for `record`."""
        scrubbed = getattr(record, "_scrubbed", False)
        message = record.getMessage()
        payload: dict[str, Any] = {
            "time": self._time(record.created),
            "level": record.levelname,
            "logger": record.name,
            "message": message if scrubbed else redact(message),
        }
        attributes = vars(record)
        # What `extra=` and filters added: a set difference, then sorted so lines read alike.
        for key in sorted(attributes.keys() - _STANDARD_ATTRS):
            if key[0] == "_":
                continue
            value = attributes[key]
            if scrubbed and key == "request_id":
                payload[key] = value
            else:
                payload[key] = REDACTED if _sensitive_key(key) else _redact_values(value)
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
            scrubbed = False  # formatted here, after the factory ran
        if record.exc_text:
            payload["exc_info"] = record.exc_text if scrubbed else redact(record.exc_text)
        if record.stack_info:
            payload["stack_info"] = record.stack_info if scrubbed else redact(record.stack_info)
        return json.dumps(payload, default=str, ensure_ascii=False)

    def _time(self, created: float) -> str:
        """Return `created` as `2024-01-15T10:00:00.123Z` (the second's text is reused)."""
        second = int(created)
        if second != self._second:
            stamp = datetime.fromtimestamp(second, UTC).isoformat(timespec="seconds")
            self._second, self._second_text = second, stamp.removesuffix("+00:00")
        return f"{self._second_text}.{int((created - second) * 1000):03d}Z"


@lru_cache(maxsize=512)
def _sensitive_key(key: str) -> bool:
    """Tell whether a key names a secret (cached: log records reuse a handful of keys)."""
    return bool(SENSITIVE_KEY.search(key))


def _redact_values(value: Any) -> Any:
    """Redact every string inside `value` (dicts and lists walked)."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {
            k: REDACTED if _sensitive_key(str(k)) else _redact_values(v) for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return [_redact_values(v) for v in value]
    return value


class _StderrHandler(logging.StreamHandler):
    """A stream handler that looks `sys.stderr` up on every write (test runners swap it)."""

    def __init__(self) -> None:
        """Create the handler without binding a stream."""
        logging.Handler.__init__(self)

    @property
    def stream(self):  # type: ignore[override]
        """The current standard error."""
        return sys.stderr


def configure_logging(app: Flask) -> None:
    """Redact every record, register the app's secrets and print the app's logs as JSON lines."""
    install_record_factory()
    remember_secrets(app)
    logger = logging.getLogger(APP_LOGGER)
    if logger.level == logging.NOTSET:
        logger.setLevel(app.config.get("LOG_LEVEL", "INFO"))
    # Tests read records through pytest's handlers; a stderr copy would only add noise.
    if app.testing or any(getattr(h, "smartcv_json", False) for h in logger.handlers):
        return
    handler = _StderrHandler()
    handler.setFormatter(JsonFormatter())
    handler.smartcv_json = True  # type: ignore[attr-defined]
    logger.addHandler(handler)
