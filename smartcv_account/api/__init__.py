"""HTTP endpoints: one blueprint per endpoint group.

A view returns the service's answer; its `@endpoint` declaration dumps it with the response
schema into the success envelope. The two answers that also change the session cookie say so.
"""

from __future__ import annotations

from typing import Any

from ..openapi import Reply
from ..session_cookie import clear_session_cookie, set_session_cookie


def signing_in(data: Any, token: str) -> Reply:
    """Answer `data` and put the new session's token in a fresh cookie."""
    return Reply(data, lambda response: set_session_cookie(response, token))


def signing_out(data: Any = None) -> Reply:
    """Answer `data` and tell the browser to drop its session cookie."""
    return Reply(data, clear_session_cookie)
