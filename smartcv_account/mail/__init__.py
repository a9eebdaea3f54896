"""Outgoing mail: the outbox written with each change, and the worker that sends it."""
