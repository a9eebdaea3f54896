"""Business rules. Services take plain values, never the request, and own the commit."""
