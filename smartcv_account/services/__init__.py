"""Business rules. Services take plain values, never the request; they change rows and build
their answers, and the request's COMMIT comes after (transaction.py)."""
