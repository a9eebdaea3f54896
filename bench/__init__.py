"""The hot-path benchmark: the service against a bare Flask ceiling (see docs/performance.md)."""
