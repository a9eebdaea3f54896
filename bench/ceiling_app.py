"""The ceiling: a bare Flask JSON endpoint, served by gunicorn exactly as the service is.

It answers every path and method the benchmark drives with the same envelope and a body of
the same shape and size as GET /api/account, so the load generator sends byte-identical
requests to both servers and the only difference is the work the service does: session
cookie, user lookup, schema dump, hooks and logging. Nothing here touches a database.
"""

from __future__ import annotations

from flask import Flask, jsonify

# Shaped like GET /api/account's data, so the ceiling pays the same JSON encoding.
ACCOUNT_SHAPED = {
    "id": "user_0123456789abcdef01234567",
    "email": "bench-user-00@example.com",
    "name": "Bench User 00",
    "avatar": None,
    "emailVerified": False,
    "emailVerifiedAt": None,
    "subscriptionType": "PREMIUM",
    "subscriptionStatus": "ACTIVE",
    "subscriptionExpiresAt": "2025-02-01T00:00:00Z",
    "resumesCreated": 0,
    "resumesLimit": -1,
    "apiRequestsUsed": 0,
    "apiRequestsLimit": 1000,
    "storageUsed": 0,
    "storageLimit": 104857600,
    "preferences": {
        "language": "en",
        "timezone": "UTC",
        "theme": "light",
        "emailNotifications": True,
        "marketingEmails": False,
    },
    "createdAt": "2025-01-01T00:00:00Z",
    "updatedAt": "2025-01-01T00:00:00Z",
    "lastLoginAt": "2025-01-01T00:00:00Z",
}


def create_app() -> Flask:
    """Build the bare app: one catch-all JSON route, no extensions, no hooks."""
    app = Flask(__name__, static_folder=None)
    app.json.sort_keys = False  # as the service does

    @app.route("/", defaults={"path": ""}, methods=["GET", "PUT", "POST"])
    @app.route("/<path:path>", methods=["GET", "PUT", "POST"])
    def ceiling(path: str):
        """Answer any benchmarked request with the canned account-shaped envelope."""
        return jsonify({"success": True, "data": ACCOUNT_SHAPED})

    return app


app = create_app()
