"""The one seam through which services learn who is calling: address and user agent.

Services never see `request`; sessions and activity events still record the client a person
would recognise. This reads it from the request being served, if any (the CLI and background
work have none), as `clock.py` is the one seam for time. The address is `remote_addr`, which
ProxyFix rewrites from X-Forwarded-For only for the TRUSTED_PROXIES configured (http.py).
"""

from __future__ import annotations

from dataclasses import dataclass

from flask import has_request_context, request

# Column sizes of auth_sessions and activity_events; a longer user agent is cut, not refused.
MAX_ADDRESS_LENGTH = 45
MAX_USER_AGENT_LENGTH = 512


@dataclass(frozen=True, slots=True)
class Client:
    """Where a request came from, as far as the service can tell."""

    ip_address: str | None
    user_agent: str | None


NOBODY = Client(None, None)


def current() -> Client:
    """Return the client of the request being served, or NOBODY outside a request."""
    if not has_request_context():
        return NOBODY
    address = request.remote_addr
    agent = request.headers.get("User-Agent") or None
    return Client(
        address[:MAX_ADDRESS_LENGTH] if address else None,
        _storable(agent[:MAX_USER_AGENT_LENGTH]) if agent else None,
    )


def _storable(text: str) -> str | None:
    """Drop what PostgreSQL text cannot hold (NUL); headers arrive as Latin-1 already."""
    cleaned = text.replace("\x00", "")
    return cleaned or None
