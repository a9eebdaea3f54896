"""Marshmallow schemas: what each endpoint accepts and what it returns."""
