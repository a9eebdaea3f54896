"""Rules about a subscription at a moment, each in one module with its Python and SQL forms
side by side (tests/test_rules.py holds each pair equal on every boundary)."""
