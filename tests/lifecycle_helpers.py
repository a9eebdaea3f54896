"""Helpers shared by the sessions, activity, export and deletion tests."""

from __future__ import annotations

SESSIONS_URL = "/api/account/sessions"
ACTIVITY_URL = "/api/account/activity"
EXPORT_URL = "/api/account/export"
ACCOUNT_URL = "/api/account"


def sessions(client) -> list[dict]:
    """The live sessions the client's user sees."""
    response = client.get(SESSIONS_URL)
    assert response.status_code == 200, response.json
    return response.json["data"]


def current_session(client) -> dict:
    """The session the client itself is signed in with."""
    return next(s for s in sessions(client) if s["current"])


def events(client, **query) -> list[dict]:
    """The first page of the client's activity."""
    response = client.get(ACTIVITY_URL, query_string=query)
    assert response.status_code == 200, response.json
    return response.json["data"]["events"]


def event_types(client, **query) -> list[str]:
    """The types of the first page of the client's activity, newest first."""
    return [event["type"] for event in events(client, **query)]
