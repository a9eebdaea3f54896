"""The fast half of the outage scenario: a connection lost at the end of a request.

The full scenario (reliability/outage.py, run by `bash reliability/run.sh`) stops PostgreSQL
under load; there a connection terminated by the shutdown failed the session's closing
ROLLBACK after the answer was made, and gunicorn replaced the answer with its HTML 500.
"""

from __future__ import annotations

from sqlalchemy.exc import OperationalError

from smartcv_account.extensions import db


def test_connection_lost_while_ending_a_request_keeps_the_answer(app, auth_client, monkeypatch):
    real_remove = db.session.remove
    calls = []

    def remove_on_a_dead_connection() -> None:
        """Fail like a ROLLBACK on a connection the server terminated, once."""
        calls.append(1)
        if len(calls) == 1:
            raise OperationalError("ROLLBACK", {}, Exception("terminating connection"))
        real_remove()

    monkeypatch.setattr(db.session, "remove", remove_on_a_dead_connection)
    response = auth_client.get("/api/account")
    assert response.status_code == 200
    assert response.json["success"] is True
    assert calls  # the failing teardown did run
